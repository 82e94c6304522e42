//! Reproducer for the upstream report in BENCHMARKS.md ("tract's AVX2 int8 kernel"): the inner
//! loop body of tract-linalg 0.23.9's `avx2_mmm_i32_8x8` (x86_64/fma/avx2_mmm_i32_8x8.S.j2, lines
//! 119–170, one k step of the 8×8 i8×i8 tile) timed in isolation, as written and with its one
//! legacy-SSE instruction in its VEX form:
//!
//! ```text
//! line 120:  movq  xmm8, qword ptr [rax]   // as built: legacy SSE, while ymm0–ymm12 are live
//! fix:       vmovq xmm8, qword ptr [rax]   // VEX: zeroes the upper half, no SSE/AVX transition
//! ```
//!
//! A legacy-SSE instruction that writes an xmm register while the upper halves of the ymm
//! registers are dirty costs a state transition (or a merge with the old upper half) on every
//! k step. Nothing else differs between the two loops below.
//!
//! `cargo run --release --example avx2-i8-step` (x86-64 with AVX2). Prints ns per k step and
//! multiply-adds per second (64 per step) for both, medians of 9 timings of 1,000,000 steps.

#[cfg(target_arch = "x86_64")]
mod kernel {
    use std::arch::asm;

    /// One k step per iteration, `steps` times, over the same 8 + 8 bytes (in L1: the cost is
    /// the instructions, not memory). `vex`: the fixed load.
    pub fn run(steps: u64, vex: bool, a: &[i8; 8], b: &[i8; 8]) {
        macro_rules! body {
            ($load:literal) => {
                unsafe {
                    asm!(
                        "vpxor ymm0, ymm0, ymm0",
                        "vpxor ymm1, ymm1, ymm1",
                        "vpxor ymm2, ymm2, ymm2",
                        "vpxor ymm3, ymm3, ymm3",
                        "vpxor ymm4, ymm4, ymm4",
                        "vpxor ymm5, ymm5, ymm5",
                        "vpxor ymm6, ymm6, ymm6",
                        "vpxor ymm7, ymm7, ymm7",
                        "2:",
                        $load,
                        "vpmovsxbw ymm8, xmm8",
                        "vpbroadcastb ymm9, byte ptr [{b}]",
                        "vpbroadcastb ymm10, byte ptr [{b} + 1]",
                        "vpbroadcastb ymm11, byte ptr [{b} + 2]",
                        "vpbroadcastb ymm12, byte ptr [{b} + 3]",
                        "vpmovsxbw ymm9, xmm9",
                        "vpmovsxbw ymm10, xmm10",
                        "vpmovsxbw ymm11, xmm11",
                        "vpmovsxbw ymm12, xmm12",
                        "vpmullw ymm9, ymm9, ymm8",
                        "vpmullw ymm10, ymm10, ymm8",
                        "vpmullw ymm11, ymm11, ymm8",
                        "vpmullw ymm12, ymm12, ymm8",
                        "vpmovsxwd ymm9, xmm9",
                        "vpmovsxwd ymm10, xmm10",
                        "vpmovsxwd ymm11, xmm11",
                        "vpmovsxwd ymm12, xmm12",
                        "vpaddd ymm0, ymm0, ymm9",
                        "vpaddd ymm1, ymm1, ymm10",
                        "vpaddd ymm2, ymm2, ymm11",
                        "vpaddd ymm3, ymm3, ymm12",
                        "vpbroadcastb ymm9, byte ptr [{b} + 4]",
                        "vpbroadcastb ymm10, byte ptr [{b} + 5]",
                        "vpbroadcastb ymm11, byte ptr [{b} + 6]",
                        "vpbroadcastb ymm12, byte ptr [{b} + 7]",
                        "vpmovsxbw ymm9, xmm9",
                        "vpmovsxbw ymm10, xmm10",
                        "vpmovsxbw ymm11, xmm11",
                        "vpmovsxbw ymm12, xmm12",
                        "vpmullw ymm9, ymm9, ymm8",
                        "vpmullw ymm10, ymm10, ymm8",
                        "vpmullw ymm11, ymm11, ymm8",
                        "vpmullw ymm12, ymm12, ymm8",
                        "vpmovsxwd ymm9, xmm9",
                        "vpmovsxwd ymm10, xmm10",
                        "vpmovsxwd ymm11, xmm11",
                        "vpmovsxwd ymm12, xmm12",
                        "vpaddd ymm4, ymm4, ymm9",
                        "vpaddd ymm5, ymm5, ymm10",
                        "vpaddd ymm6, ymm6, ymm11",
                        "vpaddd ymm7, ymm7, ymm12",
                        "dec {n}",
                        "jnz 2b",
                        "vzeroupper",
                        a = in(reg) a.as_ptr(),
                        b = in(reg) b.as_ptr(),
                        n = inout(reg) steps => _,
                        out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
                        out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
                        out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
                        out("ymm12") _,
                        options(nostack, readonly),
                    )
                }
            };
        }
        if vex {
            body!("vmovq xmm8, qword ptr [{a}]");
        } else {
            body!("movq xmm8, qword ptr [{a}]");
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::time::Instant;
    if !std::arch::is_x86_feature_detected!("avx2") {
        eprintln!("this CPU has no AVX2: nothing to reproduce");
        return;
    }
    const STEPS: u64 = 1_000_000;
    let (a, b) = (
        [1i8, -2, 3, -4, 5, -6, 7, -8],
        [2i8, 3, -5, 7, -11, 13, -17, 19],
    );
    let time = |vex: bool| {
        let mut ns: Vec<f64> = (0..9)
            .map(|_| {
                let t = Instant::now();
                kernel::run(STEPS, vex, &a, &b);
                t.elapsed().as_secs_f64() * 1e9 / STEPS as f64
            })
            .collect();
        ns.sort_by(f64::total_cmp);
        ns[4]
    };
    kernel::run(STEPS, false, &a, &b); // warm up
    let cpu = attnprompt::bench::cpu_model();
    println!(
        "{cpu}: one k step of avx2_mmm_i32_8x8 (64 int8 multiply-adds), median of 9 × {STEPS}"
    );
    for (label, vex) in [("movq  (as built)", false), ("vmovq (fixed)   ", true)] {
        let ns = time(vex);
        println!("{label}  {ns:7.2} ns per step  {:6.2} GMAC/s", 64.0 / ns);
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("an x86-64 reproducer: nothing to run on this architecture");
}

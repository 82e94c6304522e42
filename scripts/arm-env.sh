# shellcheck shell=bash
# Used by scripts/cross-test, scripts/dist, scripts/check-dist and .ci/run (source it, then call
# arm_env TARGET). ARM_STATIC=0 builds dynamically linked instead (then the runner needs the
# sysroot, ARM_SYSROOT; the release check fails such a binary above glibc 2.27).
# Installs what a cross build for an ARM target needs (Debian cross gcc, qemu-user, the rustup
# target), idempotently, and exports cargo's linker / C compiler / runner for that target.
# Sets: REPO_ROOT, CARGO_TARGET_DIR, ARM_TRIPLE_ENV (TARGET upper-cased with _), ARM_QEMU, ARM_SYSROOT, ARM_RUNNER,
# ARM_DEFAULT_CPUS (the qemu CPU models the suite runs under), ARM_GCC.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Installs Debian packages that are missing; apt-get update only when something is.
arm_apt() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "arm-env: apt-get install ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

arm_rustup_target() {
    rustup target list --installed | grep -qx "$1" && return 0
    echo "arm-env: rustup target add $1" >&2
    rustup target add "$1" >&2
}

# arm_env TARGET: install the toolchain for TARGET and export cargo's settings for it.
arm_env() {
    local target="$1" pkg
    case "$target" in
        aarch64-unknown-linux-gnu | aarch64-unknown-linux-musl)
            ARM_GCC=aarch64-linux-gnu
            # The cross glibc (libc.a for the static link) is only a Recommends of the gcc.
            pkg="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
            ARM_QEMU=qemu-aarch64
            ARM_SYSROOT=/usr/aarch64-linux-gnu
            # Pi 4 (Cortex-A72: no dot product) and Pi 5 (Cortex-A76: SDOT), so both int8
            # kernel paths run. Never qemu's default `max`: it has SVE/SME, which no Pi or
            # Jetson has, and tract would pick SVE kernels.
            ARM_DEFAULT_CPUS="cortex-a72 cortex-a76"
            ;;
        armv7-unknown-linux-gnueabihf | armv7-unknown-linux-musleabihf)
            ARM_GCC=arm-linux-gnueabihf
            pkg="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"
            ARM_QEMU=qemu-arm
            ARM_SYSROOT=/usr/arm-linux-gnueabihf
            # ARMv7-A with NEON and VFPv4, what a 32-bit Pi OS runs on (qemu-arm has no A72/A53).
            ARM_DEFAULT_CPUS="cortex-a15"
            ;;
        *)
            echo "arm-env: unsupported target $target" >&2
            return 2
            ;;
    esac
    # shellcheck disable=SC2086 # $pkg is a list
    arm_apt $pkg qemu-user
    arm_rustup_target "$target"

    # One glibc per run. qemu's -L prefix plus the guest's /etc/ld.so.cache would mix the cross
    # sysroot with a multiarch libc6:<arch> if one is installed, and every guest thread creation
    # then hangs. With the multiarch libc present, the host root is the one consistent sysroot.
    ARM_TRIPLE_ENV="$(echo "$target" | tr 'a-z-' 'A-Z_')"
    local arch
    case "$target" in aarch64-*) arch=arm64 ;; *) arch=armhf ;; esac
    if dpkg-query -W -f='${Status}' "libc6:$arch" 2>/dev/null | grep -q "install ok installed"; then
        ARM_SYSROOT=/
    fi
    ARM_RUNNER="$ARM_QEMU -L $ARM_SYSROOT"
    # Every ARM build links glibc statically (tests and release binaries are the same build,
    # profile `dist`): the binary needs no glibc on the board (JetPack 4 has 2.27, this machine's
    # cross glibc is 2.36), and qemu loads no guest libraries, so no sysroot can be mixed in.
    # Static glibc cannot use NSS or dlopen, which nothing here does.
    if [ "${ARM_STATIC:-1}" = 1 ]; then
        local flags="-C target-feature=+crt-static"
        if [[ $target == armv7-* ]]; then
            # Link armv7 with LLVM's lld (shipped with rustc) instead of GNU ld: GNU ld 2.40
            # drops the Thumb bit from the R_ARM_IRELATIVE addends (glibc's memcpy ifunc) of a
            # static binary once its code passes Thumb's 16 MB branch range, so every test
            # executable that links tract crashed at start-up under qemu (SIGSEGV in
            # __libc_start_main); small ones ran.
            local gcc_ld
            gcc_ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld"
            flags="$flags -C link-arg=-fuse-ld=lld -C link-arg=-B$gcc_ld"
        fi
        export "CARGO_TARGET_${ARM_TRIPLE_ENV}_RUSTFLAGS=$flags"
        ARM_RUNNER="$ARM_QEMU"
    fi

    # Each ARM target builds in a target directory of its own (target/cross-aarch64, ...), so it
    # can build while the host tests or another target's emulated suite run: a `cargo test`
    # locks its target directory until its last test has run. A CARGO_TARGET_DIR set by the
    # caller wins.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target/cross-${target%%-*}}"
    local triple_cc="${target//-/_}"
    export "CARGO_TARGET_${ARM_TRIPLE_ENV}_LINKER=$ARM_GCC-gcc"
    export "CC_${triple_cc}=$ARM_GCC-gcc"
    export "AR_${triple_cc}=$ARM_GCC-ar"
    # qemu-user reads the CPU model from QEMU_CPU; callers set it per run.
    export "CARGO_TARGET_${ARM_TRIPLE_ENV}_RUNNER=$ARM_RUNNER"
}

# Under qemu, /proc/cpuinfo describes the host, so tell tract what it runs on, as tract's own CI
# does. Instruction-set features (dot product, SVE, ...) come from the auxiliary vector, which qemu
# fills in for QEMU_CPU; only the core family and armv7's NEON come from /proc/cpuinfo.
# arm_cpu_env CPU: export QEMU_CPU and tract's knobs for that core.
arm_cpu_env() {
    export QEMU_CPU="$1"
    unset TRACT_CPU_AARCH64_KIND TRACT_CPU_ARM32_NEON
    case "$1" in
        # tract tunes its fp32 kernels per core family; an A76 (part 0xd0b) is `Generic` in its
        # table, which is what a Pi 5 gets. An A72 is a72 (Pi 4).
        cortex-a72) export TRACT_CPU_AARCH64_KIND=a72 ;;
        cortex-a76) export TRACT_CPU_AARCH64_KIND=generic ;;
        neoverse-n1) export TRACT_CPU_AARCH64_KIND=neoverse ;;
        cortex-a15 | cortex-a7) export TRACT_CPU_ARM32_NEON=true ;;
        *)
            echo "arm-env: no tract settings for QEMU_CPU=$1 (use a real core, never max)" >&2
            return 2
            ;;
    esac
}

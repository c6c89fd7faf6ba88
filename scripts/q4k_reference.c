// q4k_reference.c: reads float32 rows (a multiple of 256 values each) on stdin and writes
// what llama.cpp's reference quantizer (quantize_row_q4_K_ref in ggml-quants.c, the one
// llama-quantize uses without an importance matrix) makes of them on stdout. Built and
// run by scripts/gen_q4k_fixture.sh against llama.cpp's own sources.
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"
#include "ggml-quants.h"

int main(void) {
    enum { QK = 256, BLOCK_BYTES = 144 };
    size_t cap = 1 << 20, n = 0;
    float *x = malloc(cap * sizeof(float));
    size_t got;
    while ((got = fread(x + n, sizeof(float), cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            x = realloc(x, cap * sizeof(float));
        }
    }
    if (n % QK != 0) {
        fprintf(stderr, "q4k_reference: %zu values are not whole blocks of %d\n", n, QK);
        return 1;
    }
    unsigned char *y = malloc(n / QK * BLOCK_BYTES);
    quantize_row_q4_K_ref(x, (block_q4_K *)y, (int64_t)n);
    fwrite(y, 1, n / QK * BLOCK_BYTES, stdout);
    return 0;
}

/*  nf_fuzz: what every libFuzzer target here shares (the buffer and UTF-8
    checks of base/nf_buf.h). NF_FUZZ_CHECK aborts with a message when an
    invariant of an output fails: libFuzzer counts an abort as a crash and
    saves the input that caused it. */
#ifndef NF_FUZZ_H
#define NF_FUZZ_H

#include "nf_buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define NF_FUZZ_CHECK(cond)                                                               \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf (stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort ();                                                                     \
        }                                                                                 \
    } while (0)

#endif

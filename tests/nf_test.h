/*  nf_test: the in-tree unit-test harness. Checks survive NDEBUG, print both
    values on failure, and the run ends with the plain line "N passed, N failed". */
#ifndef NF_TEST_H
#define NF_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int nf_test_passed, nf_test_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond)                                                                     \
            nf_test_passed++;                                                         \
        else {                                                                        \
            nf_test_failed++;                                                         \
            fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)
#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long) (a), b_ = (long long) (b);                                      \
        if (a_ == b_)                                                                              \
            nf_test_passed++;                                                                      \
        else {                                                                                     \
            nf_test_failed++;                                                                      \
            fprintf (stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, \
                     a_, b_);                                                                      \
        }                                                                                          \
    } while (0)
#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ && b_ && strcmp (a_, b_) == 0)                                                      \
            nf_test_passed++;                                                                      \
        else {                                                                                     \
            nf_test_failed++;                                                                      \
            fprintf (stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, \
                     #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                  \
        }                                                                                          \
    } while (0)
#define CHECK_NEAR(a, b, eps)                                                                     \
    do {                                                                                          \
        double a_ = (a), b_ = (b);                                                                \
        if (fabs (a_ - b_) <= (eps))                                                              \
            nf_test_passed++;                                                                     \
        else {                                                                                    \
            nf_test_failed++;                                                                     \
            fprintf (stderr, "%s:%d: %s ~ %s failed: %.6f != %.6f\n", __FILE__, __LINE__, #a, #b, \
                     a_, b_);                                                                     \
        }                                                                                         \
    } while (0)
#define NF_TEST_END() \
    (printf ("%d passed, %d failed\n", nf_test_passed, nf_test_failed), nf_test_failed ? 1 : 0)

#endif

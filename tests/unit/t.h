/* t.h: a minimal test harness: CHECK records a failure and goes on; main returns the count. */
#ifndef CASETRAIL_T_H
#define CASETRAIL_T_H

#include <stdio.h>
#include <string.h>

static int t_failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            t_failures++;                                                             \
        }                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                               \
    do {                                                                              \
        const char *a_ = (a), *b_ = (b);                                              \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                        \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, \
                    b_ ? b_ : "(null)", a_ ? a_ : "(null)");                          \
            t_failures++;                                                             \
        }                                                                             \
    } while (0)

#define T_DONE()                                                                      \
    do {                                                                              \
        if (t_failures)                                                               \
            fprintf(stderr, "%d check(s) failed\n", t_failures);                      \
        return t_failures ? 1 : 0;                                                    \
    } while (0)

#endif

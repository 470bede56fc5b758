/* cursor.c: encoding and strict decoding of list cursors. */
#include <stdio.h>
#include <string.h>

#include "casetrail/cursor.h"

/* 9999-12-31T23:59:59.999999Z in Unix microseconds: no stored time is later */
#define US_MAX 253402300799999999LL
#define MAX_PARTS 4

/* Reads "<tag><n>_<n>..." with exactly nparts parts, each a decimal without sign or leading
 * zero (so each value has one spelling) within [0, max[i]]. */
static bool decode(const char *s, char tag, int nparts, const long long *max, long long *out)
{
    if (s == NULL || s[0] != tag)
        return false;
    s++;
    for (int i = 0; i < nparts; i++) {
        long long v = 0;
        int digits = 0;
        if (i > 0 && *s++ != '_')
            return false;
        if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
            return false;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
            int d = *s - '0';
            if (d > max[i] || v > (max[i] - d) / 10)
                return false; /* above max, and never an overflow */
            v = v * 10 + d;
        }
        if (digits == 0)
            return false;
        out[i] = v;
    }
    return *s == '\0';
}

void ct_cursor_ticket_encode(const struct ct_ticket_cursor *c, char out[CT_CURSOR_MAX])
{
    snprintf(out, CT_CURSOR_MAX, "t%lld_%lld", c->updated_us, c->id);
}

bool ct_cursor_ticket_decode(const char *s, struct ct_ticket_cursor *c)
{
    static const long long max[] = {US_MAX, (1LL << 62)};
    long long v[MAX_PARTS];
    memset(c, 0, sizeof(*c));
    if (!decode(s, 't', 2, max, v) || v[1] == 0)
        return false;
    *c = (struct ct_ticket_cursor){true, v[0], v[1]};
    return true;
}

void ct_cursor_timeline_encode(const struct ct_timeline_cursor *c, char out[CT_CURSOR_MAX])
{
    snprintf(out, CT_CURSOR_MAX, "%c%lld_%lld_%d_%lld", c->before ? 'b' : 'l', c->at_us,
             c->rec_us, c->kind, c->id);
}

void ct_cursor_since_encode(long long seq, char out[CT_CURSOR_MAX])
{
    snprintf(out, CT_CURSOR_MAX, "s%lld", seq);
}

bool ct_cursor_timeline_decode(const char *s, struct ct_timeline_cursor *c)
{
    static const long long max[] = {US_MAX, US_MAX, 1, (1LL << 62)};
    static const long long seq_max[] = {(1LL << 62)};
    long long v[MAX_PARTS];
    memset(c, 0, sizeof(*c));
    if (s != NULL && s[0] == 's') {
        if (!decode(s, 's', 1, seq_max, v))
            return false;
        c->set = c->since = true;
        c->since_seq = v[0];
        return true;
    }
    bool before = s != NULL && s[0] == 'b';
    if (!decode(s, before ? 'b' : 'l', 4, max, v) || v[3] == 0)
        return false;
    *c = (struct ct_timeline_cursor){true, v[0], v[1], v[3], (int)v[2], false, 0, before};
    return true;
}

void ct_cursor_id_encode(char tag, const struct ct_id_cursor *c, char out[CT_CURSOR_MAX])
{
    snprintf(out, CT_CURSOR_MAX, "%c%lld", tag, c->id);
}

bool ct_cursor_id_decode(char tag, const char *s, struct ct_id_cursor *c)
{
    static const long long max[] = {(1LL << 62)};
    long long v[MAX_PARTS];
    memset(c, 0, sizeof(*c));
    if (!decode(s, tag, 1, max, v) || v[0] == 0)
        return false;
    *c = (struct ct_id_cursor){true, v[0]};
    return true;
}

void ct_cursor_at_encode(char tag, const struct ct_at_cursor *c, char out[CT_CURSOR_MAX])
{
    snprintf(out, CT_CURSOR_MAX, "%c%lld_%lld", tag, c->at_us, c->id);
}

bool ct_cursor_at_decode(char tag, const char *s, struct ct_at_cursor *c)
{
    static const long long max[] = {US_MAX, (1LL << 62)};
    long long v[MAX_PARTS];
    memset(c, 0, sizeof(*c));
    if (!decode(s, tag, 2, max, v) || v[1] == 0)
        return false;
    *c = (struct ct_at_cursor){true, v[0], v[1]};
    return true;
}

/* text.c: hex, UTF-8 and date-text helpers shared by the HTTP, WhatsApp, audit and store code. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "casetrail/text.h"

void ct_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ct_hex_decode(const char *hex, unsigned char *out, size_t len)
{
    if (hex == NULL || strlen(hex) != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(hex[2 * i]);
        int lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

size_t ct_utf8_seq_len(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    size_t n;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t k = 1; k <= n; k++) {
        if ((s[k] & 0xc0) != 0x80) /* also stops at the NUL terminator */
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n + 1;
}

bool ct_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        /* a multi-byte sequence must end inside buf: check bounds before looking at it */
        size_t need = (s[i] & 0xe0) == 0xc0   ? 2
                      : (s[i] & 0xf0) == 0xe0 ? 3
                      : (s[i] & 0xf8) == 0xf0 ? 4
                                              : 0;
        if (need == 0 || i + need > len)
            return false;
        char tmp[5] = {0};
        memcpy(tmp, s + i, need);
        if (ct_utf8_seq_len(tmp) != need)
            return false;
        i += need;
    }
    return true;
}

void ct_utf8_sanitize(char *s)
{
    while (*s != '\0') {
        size_t n = ct_utf8_seq_len(s);
        if (n == 0) {
            *s++ = '?';
        } else {
            s += n;
        }
    }
}

size_t ct_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80; /* count lead bytes, not continuation bytes */
    return n;
}

bool ct_text_present(const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (!isspace((unsigned char)*s))
            return true;
    }
    return false;
}

/* Reads exactly n digits at *p into *out and advances. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool ct_text_parse_when(const char *s, char *out, size_t len)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    char frac[8] = "0", sign = '+';

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    if (*p != '\0') {
        if (*p++ != 'T' || !digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) ||
            *p++ != ':' || !digits(&p, 2, &sec) || h > 23 || mi > 59 || sec > 59)
            return false;
        if (*p == '.') {
            size_t n = 0;
            for (p++; *p >= '0' && *p <= '9'; p++) {
                if (n < 6)
                    frac[n++] = *p;
            }
            if (n == 0)
                return false;
            frac[n] = '\0';
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p++;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 14 || om > 59)
                return false;
        } else {
            return false; /* the zone must be explicit */
        }
        if (*p != '\0')
            return false;
    }
    snprintf(out, len, "%04d-%02d-%02d %02d:%02d:%02d.%s%c%02d:%02d", y, mo, d, h, mi, sec, frac,
             sign, oh, om);
    return true;
}

void ct_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    ct_hex_encode(md, sizeof(md), out);
}

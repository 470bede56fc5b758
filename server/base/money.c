/* money.c: ISO 4217 minor-unit exponents and decimal amounts, in integers only (no double ever
 * touches an amount, so no rounding can creep in). */
#include <stdio.h>
#include <string.h>

#include "casetrail/money.h"

int ct_money_exponent(const char *currency)
{
    /* ISO 4217's list: the codes whose minor unit is not two digits. CASETRAIL_CURRENCY is
     * only checked to be three capital letters, so a code missing here counts as two digits:
     * add it here when a deployment uses one. */
    static const struct {
        const char *codes;
        int exponent;
    } table[] = {
        {"BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF", 0},
        {"BHD IQD JOD KWD LYD OMR TND", 3},
        {"CLF UYW", 4},
    };
    if (currency == NULL || strlen(currency) != 3)
        return 2;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        for (const char *c = table[i].codes; *c != '\0'; c += c[3] == ' ' ? 4 : 3) {
            if (strncmp(c, currency, 3) == 0)
                return table[i].exponent;
        }
    }
    return 2;
}

void ct_money_format(long long minor, int exponent, char *out, size_t len)
{
    /* unsigned, so the most negative long long has a magnitude too */
    unsigned long long mag = minor < 0 ? 0ULL - (unsigned long long)minor : (unsigned long long)minor;
    size_t exp = exponent < 0 ? 0 : exponent > 18 ? 18 : (size_t)exponent;
    char digits[24], padded[24], text[48];
    size_t n = (size_t)snprintf(digits, sizeof(digits), "%llu", mag);
    /* at least one digit before the point: 5 cents are 0.05 */
    size_t width = n > exp ? n : exp + 1, k = 0;

    memset(padded, '0', width - n);
    memcpy(padded + (width - n), digits, n);
    if (minor < 0)
        text[k++] = '-';
    memcpy(text + k, padded, width - exp);
    k += width - exp;
    if (exp > 0) {
        text[k++] = '.';
        memcpy(text + k, padded + width - exp, exp);
        k += exp;
    }
    text[k] = '\0';
    snprintf(out, len, "%s", text);
}

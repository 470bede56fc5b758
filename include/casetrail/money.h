/* money.h: amounts as people read them. casetrail keeps amounts as integers in a currency's
 * minor units (docs/DECISIONS.md#currency-and-amounts); a person (or a spreadsheet) wants
 * 1500.00 for 150000 US cents. Pure functions. */
#ifndef CASETRAIL_MONEY_H
#define CASETRAIL_MONEY_H

#include <stddef.h>

/* Digits after the decimal point of an ISO 4217 currency: 0 (JPY, KRW ...), 3 (KWD, BHD ...),
 * 4 (CLF, UYW), and 2 for every other code (USD, PKR, EUR ...), an unknown one included. */
int ct_money_exponent(const char *currency);

/* Writes minor units as a decimal with exponent digits after the point: 150000 with 2 is
 * "1500.00", 5 is "0.05", -5 is "-0.05"; with 0, the integer itself. */
void ct_money_format(long long minor, int exponent, char *out, size_t len);

#endif

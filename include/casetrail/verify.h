/* verify.h: proving the record: loading a chain in one snapshot and recomputing it. The API's
 * /verify endpoint and `casetrail verify` both come here, so they cannot disagree. */
#ifndef CASETRAIL_VERIFY_H
#define CASETRAIL_VERIFY_H

#include "casetrail/audit.h"
#include "casetrail/err.h"

/* the store's handles, used by pointer only: domain headers do not include store.h */
struct ct_pool;
struct ct_tx;

/* Verifies chain (kind CT_CHAIN_TICKET or CT_CHAIN_USER, id) and fills *r. CT_E_NOT_FOUND when
 * its owner does not exist; a broken chain is CT_OK with r->ok false. */
ct_rc ct_verify_chain(struct ct_pool *pool, const char *kind, long long id,
                      struct ct_verify_result *r, struct ct_err *err);

/* The newest signed digest stored that covers a ticket, as the print view names it: its time
 * and the ticket's last seq at its digest point. Its proof and signature are checked offline,
 * from the evidence bundle (casetrail verify-bundle --verify-key). */
struct ct_digest_cover {
    bool found;
    char time[40];
    long long covers_seq;
};

/* Fills *out (found false when no signed digest covers ticket_id yet). */
ct_rc ct_verify_digest_cover(struct ct_pool *pool, long long ticket_id,
                             struct ct_digest_cover *out, struct ct_err *err);

#endif

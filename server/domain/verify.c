/* verify.c: runs the audit verifier over a chain read back from the store, and says which
 * signed digest covers a ticket. */
#include <stdlib.h>
#include <string.h>

#include "casetrail/store.h"
#include "casetrail/verify.h"

struct chain_job {
    const char *kind;
    long long id;
    struct ct_verify_result *r;
};

static ct_rc verify_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct chain_job *j = arg;
    struct ct_chain c;
    ct_rc rc = ct_store_chain_load(tx, j->kind, j->id, &c, err);
    if (rc != CT_OK)
        return rc;
    ct_audit_verify_chain(&c, j->r);
    ct_chain_free(&c);
    return CT_OK;
}

ct_rc ct_verify_chain(struct ct_pool *pool, const char *kind, long long id,
                      struct ct_verify_result *r, struct ct_err *err)
{
    struct chain_job j = {kind, id, r};
    memset(r, 0, sizeof(*r));
    /* in a transaction: the load asks for one REPEATABLE READ snapshot */
    return ct_store_in_tx(pool, verify_tx, &j, err);
}

struct cover_job {
    long long ticket_id;
    struct ct_digest_cover *out;
};

static ct_rc cover_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct cover_job *j = arg;
    struct ct_digest d;
    char *payload = NULL, signature[129], reason[200];
    long long seq = 0;
    ct_rc rc = ct_store_digest_covering(tx, j->ticket_id, &payload, signature, &seq, NULL, NULL,
                                        err);
    memset(j->out, 0, sizeof(*j->out));
    /* a stored payload that does not parse is named by verify-bundle; here it covers nothing */
    if (rc == CT_OK && payload != NULL && ct_audit_digest_parse(payload, &d, reason,
                                                                sizeof(reason))) {
        j->out->found = true;
        memcpy(j->out->time, d.time, sizeof(j->out->time));
        j->out->covers_seq = seq;
    }
    free(payload);
    return rc;
}

ct_rc ct_verify_digest_cover(struct ct_pool *pool, long long ticket_id,
                             struct ct_digest_cover *out, struct ct_err *err)
{
    struct cover_job j = {ticket_id, out};
    memset(out, 0, sizeof(*out));
    return ct_store_with_conn(pool, cover_tx, &j, err);
}

/* verify.c: runs the audit verifier over a chain read back from the store. */
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

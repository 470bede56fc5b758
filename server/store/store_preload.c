/* store_preload.c: a batched group's contact and live-ticket lookups, made for every message of
 * the group in two statements sent together instead of two round trips per message
 * (docs/DECISIONS.md "Group preload"). The answers are kept on the transaction and dropped as
 * soon as it changes what they tell. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

struct pcontact {
    char *phone_number_id, *value;
    bool by_user;
    bool found; /* false: no row held the id when the group's contacts were locked */
    struct ct_contact_row row;
};

struct plive {
    long long contact_id;
    struct ct_ticket_ref ref; /* id 0: the contact had no live ticket */
};

struct pwamid {
    char *wamid;
    bool known;
};

struct ct_preload {
    struct pcontact *contacts;
    size_t ncontacts;
    struct plive *lives;
    size_t nlives;
    struct pwamid *wamids;
    size_t nwamids;
};

void ct_preload_free(struct ct_preload *pl)
{
    if (pl == NULL)
        return;
    for (size_t i = 0; i < pl->ncontacts; i++) {
        free(pl->contacts[i].phone_number_id);
        free(pl->contacts[i].value);
    }
    for (size_t i = 0; i < pl->nwamids; i++)
        free(pl->wamids[i].wamid);
    free(pl->contacts);
    free(pl->lives);
    free(pl->wamids);
    free(pl);
}

/* ---- what the transaction asks ---- */

/* pl's answer for the contact of phone_number_id whose BSUID (by_user) or number is value;
 * NULL when it has none. */
static const struct pcontact *find_contact(const struct ct_preload *pl,
                                           const char *phone_number_id, bool by_user,
                                           const char *value)
{
    for (size_t i = 0; i < pl->ncontacts; i++) {
        const struct pcontact *c = &pl->contacts[i];
        if (c->by_user == by_user && strcmp(c->value, value) == 0 &&
            strcmp(c->phone_number_id, phone_number_id) == 0)
            return c;
    }
    return NULL;
}

bool ct_preload_contact(const struct ct_tx *tx, const char *phone_number_id, bool by_user,
                        const char *value, struct ct_contact_row *out, bool *found)
{
    const struct pcontact *c =
        tx->preload != NULL ? find_contact(tx->preload, phone_number_id, by_user, value) : NULL;
    if (c == NULL)
        return false;
    *found = c->found;
    if (c->found)
        *out = c->row;
    return true;
}

bool ct_preload_live(const struct ct_tx *tx, long long contact_id, const char *wamid,
                     struct ct_ticket_ref *out, bool *known)
{
    const struct ct_preload *pl = tx->preload;
    const struct plive *live = NULL;
    bool is_known = false, have_wamid = wamid == NULL;

    for (size_t i = 0; pl != NULL && i < pl->nlives && live == NULL; i++)
        if (pl->lives[i].contact_id == contact_id)
            live = &pl->lives[i];
    for (size_t i = 0; live != NULL && !have_wamid && i < pl->nwamids; i++) {
        if (strcmp(pl->wamids[i].wamid, wamid) == 0) {
            have_wamid = true;
            is_known = pl->wamids[i].known;
        }
    }
    if (live == NULL || !have_wamid)
        return false;
    *known = is_known;
    *out = live->ref;
    return true;
}

/* ---- what the transaction changes ---- */

/* Drops the contact answers that no longer hold: the absent ones (absent), else those about
 * contact_id (the row itself or one merged into it). */
static void drop_contacts(struct ct_preload *pl, bool absent, long long contact_id)
{
    size_t keep = 0;
    for (size_t i = 0; i < pl->ncontacts; i++) {
        struct pcontact *c = &pl->contacts[i];
        bool gone = absent ? !c->found
                           : c->found && (c->row.id == contact_id ||
                                          c->row.merged_into == contact_id);
        if (gone) {
            free(c->phone_number_id);
            free(c->value);
            continue;
        }
        pl->contacts[keep++] = *c;
    }
    pl->ncontacts = keep;
}

void ct_preload_forget_contact(struct ct_tx *tx, long long contact_id)
{
    if (tx->preload != NULL)
        drop_contacts(tx->preload, false, contact_id);
}

/* Drops the live-ticket answers about ticket id (by_ticket), else about contact id. */
static void drop_lives(struct ct_preload *pl, bool by_ticket, long long id)
{
    size_t keep = 0;
    for (size_t i = 0; i < pl->nlives; i++)
        if ((by_ticket ? pl->lives[i].ref.id : pl->lives[i].contact_id) != id)
            pl->lives[keep++] = pl->lives[i];
    pl->nlives = keep;
}

void ct_preload_forget_live(struct ct_tx *tx, long long contact_id)
{
    if (tx->preload != NULL)
        drop_lives(tx->preload, false, contact_id);
}

void ct_preload_forget_absent(struct ct_tx *tx)
{
    if (tx->preload != NULL)
        drop_contacts(tx->preload, true, 0);
}

void ct_preload_forget_ticket(struct ct_tx *tx, long long ticket_id)
{
    if (tx->preload != NULL)
        drop_lives(tx->preload, true, ticket_id);
}

void ct_preload_saw_wamid(struct ct_tx *tx, const char *wamid)
{
    struct ct_preload *pl = tx->preload;
    for (size_t i = 0; pl != NULL && wamid != NULL && i < pl->nwamids; i++)
        if (strcmp(pl->wamids[i].wamid, wamid) == 0)
            pl->wamids[i].known = true;
}

/* ---- the two statements ---- */

/* Locks every contact the group's messages name, by phone number and then by BSUID, each in
 * byte order of number and id (the row-by-row path's order). The lookups are lateral, one
 * index probe per id: a join would be planned for the function's guess of 100 rows and scan
 * the table. */
#define CONTACTS_BY(col, by_user)                                                             \
    "SELECT k.p, k.v, k.u, c.* FROM (SELECT p, v, u FROM jsonb_to_recordset($1::jsonb) AS"     \
    " k (p text, v text, u boolean) WHERE " by_user " GROUP BY p, v, u ORDER BY p COLLATE \"C\","  \
    " v COLLATE \"C\") k JOIN LATERAL (SELECT " CT_CONTACT_COLS " FROM contacts WHERE"         \
    " phone_number_id = k.p AND " col " = k.v FOR UPDATE) c ON true"
#define CONTACTS_SQL CONTACTS_BY("wa_id", "NOT u") " UNION ALL " CONTACTS_BY("user_id", "u")

/* The ids of the contacts CONTACTS_SQL locked (its $1, the same keys), merged ones left out.
 * OFFSET 0 keeps each lookup an index probe: without a FOR UPDATE to stop it, the planner pulls
 * the subquery up into a join planned for 100 keys, a scan of contacts (0.495 ms a call). */
#define LIVE_IDS_BY(col, by_user)                                                             \
    "SELECT c.id FROM jsonb_to_recordset($1::jsonb) AS k (p text, v text, u boolean)"          \
    " JOIN LATERAL (SELECT id FROM contacts WHERE phone_number_id = k.p AND " col " = k.v"     \
    " AND merged_into IS NULL OFFSET 0) c ON true WHERE " by_user

/* Sent right behind CONTACTS_SQL in the same round trip, so it runs once the locks are held and
 * its snapshot sees every message committed by whoever held them before: the contacts' live
 * tickets (locked in contact order, with their chains, the contact's text salt and the digest's
 * shared lock, as the per-message statement takes them) and which of the group's wamids are
 * stored (one index probe each, as the receipts ask: = ANY over the array was planned as a scan
 * of all messages while the table was young, and kept). Rows: 't', contact, REF_COLS,
 * last_seq, chain_head, salt; or 'w', NULL, wamid. */
#define LIVES_SQL                                                                             \
    "SELECT 't', c.id, t.id::text, t.status, t.assignee, t.escalation_level, t.priority,"     \
    " t.complaint_escalated, t.last_seq, t.chain_head,"                                        \
    " (SELECT salt FROM text_salts WHERE scope = 'contact:' || c.id)"                          \
    " FROM (SELECT DISTINCT id FROM (" LIVE_IDS_BY("wa_id", "NOT u") " UNION ALL "            \
    LIVE_IDS_BY("user_id", "u") ") ids ORDER BY 1) c"                                          \
    " JOIN LATERAL (SELECT id, status, coalesce(assignee_id, 0) AS assignee,"                  \
    " escalation_level, priority, complaint_escalated, last_seq, chain_head,"                  \
    " pg_advisory_xact_lock_shared(" CT_DIGEST_LOCK ") FROM tickets WHERE contact_id = c.id"   \
    " AND status <> 'closed' FOR UPDATE) t ON true"                                             \
    " UNION ALL SELECT 'w', NULL, w.x, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"         \
    " FROM jsonb_array_elements_text($2::jsonb) AS w (x)"                                       \
    " WHERE (SELECT true FROM messages m WHERE m.wamid = w.x LIMIT 1)"

static bool add_key(cJSON *keys, const char *phone_number_id, const char *value, bool by_user)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && ct_json_add_str(o, "p", phone_number_id) &&
              ct_json_add_str(o, "v", value) && cJSON_AddBoolToObject(o, "u", by_user) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return false;
    }
    return ct_json_append(keys, o);
}

/* Records each key of keys[0..n) as found (a row of res) or absent. */
static bool keep_contacts(struct ct_preload *pl, const struct ct_preload_key *keys, size_t n,
                          const PGresult *res)
{
    size_t cap = 2 * n;
    if ((pl->contacts = calloc(cap + 1, sizeof(*pl->contacts))) == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        for (int by_user = 0; by_user < 2; by_user++) {
            const char *v = by_user ? keys[i].user_id : keys[i].wa_id;
            struct ct_contact_row row;
            if (v == NULL || keys[i].phone_number_id == NULL ||
                find_contact(pl, keys[i].phone_number_id, by_user, v) != NULL)
                continue;
            struct pcontact *c = &pl->contacts[pl->ncontacts];
            c->by_user = by_user;
            c->phone_number_id = strdup(keys[i].phone_number_id);
            c->value = strdup(v);
            if (c->phone_number_id == NULL || c->value == NULL) {
                free(c->phone_number_id);
                free(c->value);
                return false;
            }
            pl->ncontacts++;
            for (int r = 0; r < PQntuples(res) && !c->found; r++) {
                if ((PQgetvalue(res, r, 2)[0] == 't') != (bool)by_user ||
                    strcmp(PQgetvalue(res, r, 1), v) != 0 ||
                    strcmp(PQgetvalue(res, r, 0), keys[i].phone_number_id) != 0)
                    continue;
                ct_store_contact_from_row(res, r, 3, &row);
                c->row = row;
                c->found = true;
            }
        }
    }
    return true;
}

/* Fills st with CONTACTS_SQL for keys[0..n) and lives with LIVES_SQL, which borrows the same
 * keys text from st (so st is cleared with or after it); false on OOM. */
static bool contacts_steps(struct ct_tx_step *st, struct ct_tx_step *lives,
                           const struct ct_preload_key *keys, size_t n)
{
    cJSON *arr = cJSON_CreateArray(), *wamids = cJSON_CreateArray();
    bool ok = arr != NULL && wamids != NULL;

    for (size_t i = 0; ok && i < n; i++) {
        if (keys[i].wamid != NULL)
            ok = ct_json_append(wamids, cJSON_CreateString(keys[i].wamid));
        if (ok && keys[i].phone_number_id != NULL && keys[i].wa_id != NULL)
            ok = add_key(arr, keys[i].phone_number_id, keys[i].wa_id, false);
        if (ok && keys[i].phone_number_id != NULL && keys[i].user_id != NULL)
            ok = add_key(arr, keys[i].phone_number_id, keys[i].user_id, true);
    }
    if (!ok) {
        cJSON_Delete(arr);
        cJSON_Delete(wamids);
        return false;
    }
    /* each takes its array, printed, and frees it */
    if (!ct_tx_step_json(st, CONTACTS_SQL, arr)) {
        cJSON_Delete(wamids);
        return false;
    }
    if (!ct_tx_step_json(lives, LIVES_SQL, wamids))
        return false;
    /* $1 the keys (st's own text), $2 the wamids (lives' own) */
    lives->p = (struct ct_params){0};
    ct_param_str(&lives->p, st->owned);
    ct_param_str(&lives->p, lives->owned);
    return true;
}

/* Takes row r of LIVES_SQL ('t') into pl and its chain and salt into the transaction's held
 * writes, as the per-message statement would. */
static void keep_live(struct ct_tx *tx, struct ct_preload *pl, const PGresult *res, int r)
{
    struct plive *l = &pl->lives[pl->nlives++];
    l->contact_id = atoll(PQgetvalue(res, r, 1));
    ct_store_ticket_ref_from_row(res, r, 2, &l->ref);
    ct_store_keep_chain(tx, l->ref.id, l->contact_id, res, r, 8, 9, 10);
}

/* Fills pl's live tickets (every found contact's: id 0 when it has none) and wamids from res. */
static bool keep_lives(struct ct_tx *tx, struct ct_preload *pl, const struct ct_preload_key *keys,
                       size_t n, const PGresult *res)
{
    pl->lives = calloc(pl->ncontacts + (size_t)PQntuples(res) + 1, sizeof(*pl->lives));
    pl->wamids = calloc(n + 1, sizeof(*pl->wamids));
    if (pl->lives == NULL || pl->wamids == NULL)
        return false;
    for (int r = 0; r < PQntuples(res); r++)
        if (PQgetvalue(res, r, 0)[0] == 't')
            keep_live(tx, pl, res, r);
    for (size_t i = 0; i < pl->ncontacts; i++) {
        const struct pcontact *c = &pl->contacts[i];
        bool have = false;
        if (!c->found || c->row.merged_into != 0)
            continue;
        for (size_t k = 0; k < pl->nlives && !have; k++)
            have = pl->lives[k].contact_id == c->row.id;
        if (!have)
            pl->lives[pl->nlives++] = (struct plive){.contact_id = c->row.id};
    }
    for (size_t i = 0; i < n; i++) {
        if (keys[i].wamid == NULL)
            continue;
        struct pwamid *w = &pl->wamids[pl->nwamids];
        if ((w->wamid = strdup(keys[i].wamid)) == NULL)
            return false;
        pl->nwamids++;
        for (int r = 0; r < PQntuples(res) && !w->known; r++)
            w->known = PQgetvalue(res, r, 0)[0] == 'w' && strcmp(PQgetvalue(res, r, 2), w->wamid) == 0;
    }
    return true;
}

/* The preload from CONTACTS_SQL's and LIVES_SQL's answers. Half an answer is no answer: on
 * failure there is no preload, and the group asks row by row. */
static ct_rc preload(struct ct_tx *tx, const struct ct_group_open *g, const PGresult *contacts,
                     const PGresult *lives, struct ct_err *err)
{
    ct_rc rc = CT_OK;
    if ((tx->preload = calloc(1, sizeof(*tx->preload))) == NULL ||
        !keep_contacts(tx->preload, g->keys, g->nkeys, contacts) ||
        !keep_lives(tx, tx->preload, g->keys, g->nkeys, lives))
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    if (rc != CT_OK) {
        ct_preload_free(tx->preload);
        tx->preload = NULL;
    }
    return rc;
}

ct_rc ct_store_group_open(struct ct_tx *tx, struct ct_group_open *g, struct ct_err *err)
{
    struct ct_tx_step st[CT_TX_STEPS_MAX]; /* receipts, rules, contacts and their lives */
    int n = 0, receipts = -1, rules = -1, contacts = -1;
    bool ok = true;
    ct_rc rc = CT_OK;

    memset(st, 0, sizeof(st));
    g->locked = 0;
    if (tx->defer == NULL)
        return CT_OK;
    if (g->nreceipts > 0) {
        receipts = n++;
        ok = ct_receipts_step(&st[receipts], g->receipts, g->nreceipts, g->receipts_out);
    }
    if (ok && g->ntexts > 0) {
        rules = n++;
        ok = ct_rules_step(&st[rules], g->texts, g->ntexts);
    }
    if (ok && g->nkeys > 0 && tx->preload == NULL) {
        contacts = n;
        n += 2;
        ok = contacts_steps(&st[contacts], &st[contacts + 1], g->keys, g->nkeys);
    }
    if (!ok)
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    else if (n > 0)
        rc = ct_tx_steps(tx, st, n, err);
    if (rc == CT_OK && receipts >= 0)
        rc = ct_receipts_read(tx, st[receipts].res, g->receipts, g->nreceipts, g->receipts_out,
                              err);
    if (rc == CT_OK && rules >= 0)
        ct_rules_read(tx, st[rules].res, g->texts, g->ntexts);
    if (rc == CT_OK && contacts >= 0)
        rc = preload(tx, g, st[contacts].res, st[contacts + 1].res, err);
    for (size_t i = 0; rc == CT_OK && tx->preload != NULL && i < tx->preload->ncontacts; i++)
        g->locked += tx->preload->contacts[i].found;
    ct_tx_steps_clear(st, n);
    return rc;
}

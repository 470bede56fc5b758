/* store_timeline.c: a ticket's timeline page: one statement finds the page's messages and
 * events in time order with their plain columns, and the items are built here from those. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define ISO(col) CT_SQL_ISO_US(col)
#define US(col) CT_SQL_US(col)

/* A page costs its size, not the ticket's: each branch walks its timeline index
 * (messages_timeline, events_timeline: migration 0016) from the cursor and stops after the
 * page, and only those two short runs are merged by the sort key. The key is in microseconds
 * (what cursors carry), but the index is on the columns: US() is exact and strictly increasing
 * at timestamptz's microsecond resolution, so ordering and comparing the columns (the cursor's
 * times passed back as timestamptz) is ordering and comparing the key. Sorting the keys of the
 * whole ticket first cost a 10,000-event ticket 50 to 100 ms a page under ingestion, about 7 ms
 * now (docs/PERFORMANCE.md).
 * kind sits between the times and the id in the key; within one branch it is a constant, so
 * the cursor's (kind, id) becomes an id bound per branch (tie_id). */
#define TIMELINE_BRANCHES(cmp, dir)                                                           \
    " SELECT at_us, rec_us, kind, id FROM ("                                                  \
    "  (SELECT " US("m.sent_at") " AS at_us, " US("m.received_at") " AS rec_us, 0 AS kind,"   \
    "  m.id FROM messages m WHERE m.ticket_id = $1"                                           \
    "  AND (m.sent_at, m.received_at, m.id) " cmp " ($2::timestamptz, $3::timestamptz,"      \
    "  $4::bigint) ORDER BY m.sent_at" dir ", m.received_at" dir ", m.id" dir " LIMIT $6)"     \
    "  UNION ALL"                                                                             \
    "  (SELECT " US("e.occurred_at") ", " US("e.recorded_at") ", 1, e.id FROM events e"      \
    "  WHERE e.ticket_id = $1"                                                                \
    "  AND (e.occurred_at, e.recorded_at, e.id) " cmp " ($2::timestamptz, $3::timestamptz,"  \
    "  $5::bigint) ORDER BY e.occurred_at" dir ", e.recorded_at" dir ", e.id" dir " LIMIT $6)"  \
    " ) x ORDER BY at_us" dir ", rec_us" dir ", kind" dir ", id" dir " LIMIT $6::int"

/* The answer's columns: the page's key and the chain head, then a message's, then an event's.
 * Each branch of TIMELINE_ITEMS fills its own and leaves the other's NULL; MESSAGE_COLS and
 * EVENT_COLS list them in this order (timeline_read checks the count).
 * The items used to be built by PostgreSQL as jsonb: that was 1.7 of the 2.3 ms the database
 * spent on a page (building, merging and printing jsonb), and the database is what ingestion
 * keeps busiest. Built here from the columns it is a few microseconds an item
 * (docs/PERFORMANCE.md, "Timeline read"). */
enum tl_col {
    TL_AT, TL_REC, TL_KIND, TL_ID, TL_HEAD,
    TL_M_WAMID, TL_M_DIRECTION, TL_M_TYPE, TL_M_BODY, TL_M_STATUS, TL_M_CONTENT, TL_M_ERRORS,
    TL_M_REFERRAL, TL_M_FORWARDED, TL_M_REPLY_TO,
    TL_M_ERROR_CODE, TL_M_ERROR_TITLE, TL_M_TARGET, TL_M_ORIGINAL, TL_M_EDITS, TL_M_DELETED,
    TL_M_BUSINESS_APP, TL_M_AUTHOR, TL_M_MEDIA_STATUS, TL_M_MEDIA_SHA, TL_M_MEDIA_SIZE,
    TL_M_MEDIA_REASON,
    TL_E_SEQ, TL_E_ACTION, TL_E_ACTOR_TYPE, TL_E_ACTOR_ID, TL_E_FROM, TL_E_TO, TL_E_DATA,
    TL_E_HASH, TL_E_TEXTS,
    TL_NCOLS
};

/* A message (m) with its media (d): its columns TL_M_WAMID..TL_M_MEDIA_REASON, then the
 * event's as NULL. Of the payload only what the item shows: its type's object (but a text's,
 * whose body is m.body), errors, the ad it came from, the forward flag. */
#define MESSAGE_COLS                                                                          \
    " SELECT m.wamid, m.direction, m.type, m.body, m.status,"                                 \
    "  CASE WHEN m.type <> 'text' THEN (m.payload -> m.type)::text END,"                      \
    "  (m.payload -> 'errors')::text, (m.payload -> 'referral')::text,"                      \
    "  (m.payload #> '{context,forwarded}')::text,"                                           \
    "  m.context_wamid, m.error_code, m.error_title, m.target_wamid,"                         \
    /* an edit or deletion shows what it changes (once that has arrived: order is not kept) */ \
    "  (SELECT json_build_object('wamid', o.wamid, 'type', o.type, 'text', o.body,"          \
    "    'at', " ISO("o.sent_at") ") FROM messages o WHERE o.wamid = m.target_wamid)::text,"  \
    /* every version of an edited message, and when it was deleted and by whom */             \
    "  (SELECT json_agg(json_build_object('wamid', x.wamid, 'text', x.body,"                 \
    "    'at', " ISO("x.sent_at") ") ORDER BY x.sent_at, x.id) FROM messages x"              \
    "    WHERE x.target_wamid = m.wamid AND x.type = 'edit')::text,"                         \
    "  (SELECT json_build_object('at', " ISO("x.sent_at") ", 'by',"                          \
    "    CASE x.direction WHEN 'in' THEN 'customer' ELSE 'business' END) FROM messages x"    \
    "    WHERE x.target_wamid = m.wamid AND x.type = 'revoke' ORDER BY x.sent_at LIMIT 1)::text," \
    "  m.direction = 'out' AND m.author_id IS NULL,"                                          \
    "  (SELECT u.name FROM users u WHERE u.id = m.author_id),"                                \
    "  d.status, d.sha256, d.size, d.reason,"                                                 \
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"                                  \
    " FROM messages m LEFT JOIN media d ON d.message_id = m.id WHERE k.kind = 0 AND m.id = k.id"

/* An event (e): the message's columns as NULL, then TL_E_SEQ..TL_E_TEXTS. Its texts (the
 * actor's name as it was, the reason, and any other kept beside the hashed row) come as one
 * object. */
#define EVENT_COLS                                                                            \
    " SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"  \
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"                                 \
    "  e.seq, e.action, e.actor_type, e.actor_id,"                                            \
    /* an assignment's from and to are user ids: shown as the users' names */                 \
    "  CASE WHEN e.action = '" CT_EV_ASSIGNMENT "' THEN"                                      \
    "    (SELECT name FROM users WHERE id::text = e.from_value) ELSE e.from_value END,"      \
    "  CASE WHEN e.action = '" CT_EV_ASSIGNMENT "' THEN"                                      \
    "    (SELECT name FROM users WHERE id::text = e.to_value) ELSE e.to_value END,"          \
    "  e.data::text, encode(e.hash, 'hex'),"                                                  \
    "  (SELECT json_object_agg(x.field, x.body) FROM event_texts x WHERE x.event_id = e.id)::text" \
    " FROM events e WHERE k.kind = 1 AND e.id = k.id"

/* The page's rows in time order, each with its item's columns, and beside each the chain head
 * (tickets.last_seq) read in the same snapshot: what the chain holds as the page is read, so a
 * resume cursor made from it misses nothing and needs no statement of its own. An empty page
 * is one row with only the head; an unknown ticket, no row. */
#define TIMELINE_ITEMS(keys)                                                                  \
    "SELECT k.at_us, k.rec_us, k.kind, k.id, h.last_seq, j.* FROM tickets h"                  \
    " LEFT JOIN LATERAL (" keys ") k ON true LEFT JOIN LATERAL"                               \
    " (" MESSAGE_COLS " UNION ALL" EVENT_COLS ") j ON true"                                   \
    " WHERE h.id = $1 ORDER BY k.at_us, k.rec_us, k.kind, k.id"

/* After a key ($2, $3 and the ids' bounds $4, $5), or from the start: the first $6. */
#define TIMELINE_SQL TIMELINE_ITEMS(TIMELINE_BRANCHES(">", ""))

/* Backwards from a key, or from the end: the newest $6 before it. */
#define TIMELINE_BACK_SQL TIMELINE_ITEMS(TIMELINE_BRANCHES("<", " DESC"))

/* Since a seq ($2): the next $3 events of the chain and the messages they record, whatever
 * their time (found through events_ticket_seq and the messages' ids, not the time order). */
#define TIMELINE_SINCE_SQL                                                                    \
    TIMELINE_ITEMS(                                                                           \
    " SELECT " US("m.sent_at") " AS at_us, " US("m.received_at") " AS rec_us, 0 AS kind,"    \
    " m.id FROM messages m WHERE m.ticket_id = $1"                                            \
    " AND m.id IN (SELECT CASE WHEN s.data->>'message_id' ~ '^[0-9]{1,18}$'"                 \
    "   THEN (s.data->>'message_id')::bigint END FROM events s WHERE s.ticket_id = $1"       \
    "   AND s.seq > $2::bigint AND s.seq <= $2::bigint + $3::int AND s.action IN"            \
    "   ('" CT_EV_MESSAGE_RECEIVED "', '" CT_EV_MESSAGE_ECHOED "', '" CT_EV_MESSAGE_QUEUED "'))" \
    " UNION ALL"                                                                              \
    " SELECT " US("e.occurred_at") ", " US("e.recorded_at") ", 1, e.id FROM events e"        \
    " WHERE e.ticket_id = $1 AND e.seq > $2::bigint AND e.seq <= $2::bigint + $3::int")

/* ---- items, built from a row's columns ---- */

/* Drops every object member whose value is null, at any depth (jsonb_strip_nulls: a null in
 * an array stays). */
static void strip_nulls(cJSON *v)
{
    cJSON *c = v->child;
    while (c != NULL) {
        cJSON *next = c->next;
        if (cJSON_IsObject(v) && cJSON_IsNull(c))
            cJSON_Delete(cJSON_DetachItemViaPointer(v, c));
        else
            strip_nulls(c);
        c = next;
    }
}

/* Adds v (taken; NULL is OOM) under key, a string literal: cJSON keeps the pointer instead of
 * a copy, one allocation fewer per field of every item. */
static bool add_item(cJSON *obj, const char *key, cJSON *v)
{
    if (v != NULL && cJSON_AddItemToObjectCS(obj, key, v))
        return true;
    cJSON_Delete(v);
    return false;
}

/* add_item of a string (copied), null when v is NULL; of a whole number. */
static bool add_str(cJSON *obj, const char *key, const char *v)
{
    return add_item(obj, key, v != NULL ? cJSON_CreateString(v) : cJSON_CreateNull());
}

static bool add_int(cJSON *obj, const char *key, long long v)
{
    return add_item(obj, key, ct_json_int_item(v));
}

/* Sets obj's key (a string literal) to v (taken) with its nulls stripped, replacing what was
 * there (jsonb's ||); nothing when v is missing or null, as a stripped member. False on OOM. */
static bool put(cJSON *obj, const char *key, cJSON *v)
{
    if (v == NULL || cJSON_IsNull(v)) {
        cJSON_Delete(v);
        return true;
    }
    strip_nulls(v);
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    return add_item(obj, key, v);
}

/* put of a string, nothing when NULL. */
static bool put_str(cJSON *obj, const char *key, const char *v)
{
    return v == NULL || put(obj, key, cJSON_CreateString(v));
}

/* Column c parsed as JSON into *out (caller frees; NULL for SQL NULL); false when stored JSON
 * does not parse, which PostgreSQL's own output always does. */
static bool parsed(const PGresult *res, int r, int c, cJSON **out)
{
    *out = NULL;
    if (PQgetisnull(res, r, c))
        return true;
    *out = cJSON_ParseWithLength(PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
    return *out != NULL;
}

/* Where a message's type object goes: under its type for the types the viewer knows, under
 * content for any other. */
static const char *content_key(const char *type)
{
    static const char *const known[] = {"image", "audio", "video", "document", "sticker",
                                        "location", "template", "edit", "revoke", "contacts",
                                        "interactive", "button", "reaction", "order", "system",
                                        "unsupported"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(type, known[i]) == 0)
            return known[i]; /* the literal, not type: a key outlives the answer (add_item) */
    return "content";
}

/* What the message's payload carries: its type's object, errors, the ad it came from and
 * whether it was forwarded. */
static bool message_payload(cJSON *it, const PGresult *res, int r)
{
    static const struct {
        int col;
        const char *key;
    } pieces[] = {{TL_M_ERRORS, "errors"}, {TL_M_REFERRAL, "referral"},
                  {TL_M_FORWARDED, "forwarded"}};
    const char *type = ct_store_value(res, r, TL_M_TYPE);
    cJSON *v;
    bool ok = true;

    if (type != NULL && strcmp(type, "text") != 0)
        ok = parsed(res, r, TL_M_CONTENT, &v) && put(it, content_key(type), v);
    ok = ok && put_str(it, "reply_to", ct_store_value(res, r, TL_M_REPLY_TO));
    for (size_t i = 0; ok && i < sizeof(pieces) / sizeof(pieces[0]); i++)
        ok = parsed(res, r, pieces[i].col, &v) && put(it, pieces[i].key, v);
    return ok && (ct_store_value(res, r, TL_M_ERROR_CODE) == NULL ||
                  add_int(it, "error_code", atoll(PQgetvalue(res, r, TL_M_ERROR_CODE)))) &&
           put_str(it, "error_title", ct_store_value(res, r, TL_M_ERROR_TITLE));
}

/* Edits and deletions, who wrote it, and the customer's media as kept: pending, stored
 * (download at media_url) or failed (why). */
static bool message_related(cJSON *it, const PGresult *res, int r, long long id)
{
    cJSON *original, *edits, *deleted;
    const char *media = ct_store_value(res, r, TL_M_MEDIA_STATUS);
    char url[48];
    bool ok = parsed(res, r, TL_M_ORIGINAL, &original);
    ok = parsed(res, r, TL_M_EDITS, &edits) && ok;
    ok = parsed(res, r, TL_M_DELETED, &deleted) && ok;
    /* each put takes its value, whatever came before */
    ok = put_str(it, "target_wamid", ct_store_value(res, r, TL_M_TARGET)) && ok;
    ok = put(it, "original", original) && ok;
    ok = put(it, "edits", edits) && ok;
    ok = put(it, "deleted", deleted) && ok;
    if (!ok)
        return false;
    if (strcmp(PQgetvalue(res, r, TL_M_BUSINESS_APP), "t") == 0 &&
        !put_str(it, "sent_from", "business_app"))
        return false;
    if (!put_str(it, "author", ct_store_value(res, r, TL_M_AUTHOR)) ||
        !put_str(it, "media_status", media) ||
        !put_str(it, "media_sha256", ct_store_value(res, r, TL_M_MEDIA_SHA)) ||
        (ct_store_value(res, r, TL_M_MEDIA_SIZE) != NULL &&
         !add_int(it, "media_size", atoll(PQgetvalue(res, r, TL_M_MEDIA_SIZE)))) ||
        !put_str(it, "media_reason", ct_store_value(res, r, TL_M_MEDIA_REASON)))
        return false;
    if (media == NULL || strcmp(media, "stored") != 0)
        return true;
    snprintf(url, sizeof(url), "/api/media/%lld", id);
    return put_str(it, "media_url", url);
}

/* A message's item (caller frees); NULL on OOM or stored JSON that does not parse. */
static cJSON *message_item(const PGresult *res, int r)
{
    long long id = atoll(PQgetvalue(res, r, TL_ID));
    char at[48], received[48];
    cJSON *it = cJSON_CreateObject();

    ct_store_fmt_iso(atoll(PQgetvalue(res, r, TL_AT)), at);
    ct_store_fmt_iso(atoll(PQgetvalue(res, r, TL_REC)), received);
    if (it == NULL || !add_str(it, "kind", "message") || !add_int(it, "id", id) ||
        !add_str(it, "wamid", ct_store_value(res, r, TL_M_WAMID)) ||
        !add_str(it, "direction", ct_store_value(res, r, TL_M_DIRECTION)) ||
        !add_str(it, "type", ct_store_value(res, r, TL_M_TYPE)) ||
        !add_str(it, "text", ct_store_value(res, r, TL_M_BODY)) || !add_str(it, "at", at) ||
        !add_str(it, "received_at", received) ||
        !add_str(it, "status", ct_store_value(res, r, TL_M_STATUS)) ||
        !message_payload(it, res, r) || !message_related(it, res, r, id)) {
        cJSON_Delete(it);
        return NULL;
    }
    return it;
}

/* Each member of from (taken and freed) onto obj, replacing what was there (jsonb's ||), but
 * for the names in skip; nothing when from is not an object (the store writes objects). */
static bool merge(cJSON *obj, cJSON *from, const char *skip1, const char *skip2)
{
    bool ok = obj != NULL;
    cJSON *c = cJSON_IsObject(from) ? from->child : NULL;
    while (ok && c != NULL) {
        cJSON *next = c->next;
        bool skipped = (skip1 != NULL && strcmp(c->string, skip1) == 0) ||
                       (skip2 != NULL && strcmp(c->string, skip2) == 0);
        if (!skipped) {
            cJSON_DetachItemViaPointer(from, c);
            cJSON_DeleteItemFromObjectCaseSensitive(obj, c->string);
            ok = cJSON_AddItemToObject(obj, c->string, c);
            if (!ok)
                cJSON_Delete(c);
        }
        c = next;
    }
    cJSON_Delete(from);
    return ok;
}

/* An event's who, what, from, to, why and when. */
static bool event_fields(cJSON *it, const PGresult *res, int r, const cJSON *texts)
{
    const char *actor_type = ct_store_value(res, r, TL_E_ACTOR_TYPE);
    char at[48], recorded[48];
    cJSON *actor = cJSON_CreateObject();
    bool system = actor_type != NULL && strcmp(actor_type, "system") == 0;

    ct_store_fmt_iso(atoll(PQgetvalue(res, r, TL_AT)), at);
    ct_store_fmt_iso(atoll(PQgetvalue(res, r, TL_REC)), recorded);
    if (actor == NULL || !add_str(actor, "type", actor_type) ||
        !add_str(actor, "id", ct_store_value(res, r, TL_E_ACTOR_ID)) ||
        !add_str(actor, "name",
                 system ? "system"
                        : cJSON_GetStringValue(
                              cJSON_GetObjectItemCaseSensitive(texts, "actor_name"))) ||
        !add_str(it, "kind", "event") || !cJSON_AddItemToObjectCS(it, "actor", actor)) {
        cJSON_Delete(actor);
        return false;
    }
    return add_int(it, "seq", atoll(PQgetvalue(res, r, TL_E_SEQ))) &&
           add_str(it, "action", ct_store_value(res, r, TL_E_ACTION)) &&
           add_str(it, "from", ct_store_value(res, r, TL_E_FROM)) &&
           add_str(it, "to", ct_store_value(res, r, TL_E_TO)) &&
           add_str(it, "reason",
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(texts, "reason"))) &&
           add_str(it, "at", at) && add_str(it, "recorded_at", recorded);
}

/* An event's item (caller frees): its fields, then its data and its other texts over them,
 * then its hash, last so that nothing stands in for it (the print view shows each event's).
 * NULL on OOM or stored JSON that does not parse. */
static cJSON *event_item(const PGresult *res, int r)
{
    cJSON *it = cJSON_CreateObject(), *data, *texts;
    bool ok = parsed(res, r, TL_E_DATA, &data);
    ok = parsed(res, r, TL_E_TEXTS, &texts) && ok;
    ok = ok && it != NULL && event_fields(it, res, r, texts);
    /* merge takes what it merges, whatever came before */
    ok = merge(it, data, NULL, NULL) && ok;
    ok = merge(it, texts, "actor_name", "reason") && ok;
    ok = ok && put_str(it, "hash", ct_store_value(res, r, TL_E_HASH));
    if (!ok) {
        cJSON_Delete(it);
        return NULL;
    }
    return it;
}

/* Rows [first, end) of a timeline answer, as items, onto arr. */
static ct_rc items_to_array(const PGresult *res, int first, int end, cJSON *arr,
                            struct ct_err *err)
{
    int n = PQntuples(res);
    for (int r = first; r < n && r < end; r++) {
        cJSON *item = atoi(PQgetvalue(res, r, TL_KIND)) == 0 ? message_item(res, r)
                                                              : event_item(res, r);
        if (!ct_json_append(arr, item))
            return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode a stored row");
    }
    return CT_OK;
}

/* The items' count of a timeline answer (its empty page's one row is none), and the chain head
 * it was read at (0 for an unknown ticket, which has no row). */
static int page_rows(const PGresult *res, long long *last_seq)
{
    int n = PQntuples(res);
    *last_seq = n > 0 ? atoll(PQgetvalue(res, 0, TL_HEAD)) : 0;
    return n == 1 && PQgetisnull(res, 0, TL_ID) ? 0 : n;
}

/* The id bound, in the branch of this kind, for rows at the cursor's very times: a branch of a
 * lower kind sorts before the cursor's row there (bound above every id), one of a higher kind
 * after it (bound below every id: ids start at 1), the cursor's own kind by id. */
static long long tie_id(const struct ct_timeline_cursor *c, int kind)
{
    if (c->kind > kind)
        return LLONG_MAX;
    return c->kind == kind ? c->id : 0;
}

/* $2..$6 of TIMELINE_SQL and TIMELINE_BACK_SQL: the cursor's key, or when there is none
 * (from the start, or the end) a time beyond every row's on the side the page walks from. */
static void key_params(struct ct_params *p, const struct ct_timeline_cursor *cur, bool set,
                       const char *none, int rows)
{
    if (set) {
        ct_param_ts(p, true, cur->at_us);
        ct_param_ts(p, true, cur->rec_us);
    } else {
        ct_param_str(p, none);
        ct_param_str(p, none);
    }
    ct_param_ll(p, set ? tie_id(cur, 0) : 0);
    ct_param_ll(p, set ? tie_id(cur, 1) : 0);
    ct_param_ll(p, rows);
}

/* A cursor at row r of a timeline answer; before: pages back from it. */
static void row_cursor(const PGresult *res, int r, bool before, char out[CT_CURSOR_MAX])
{
    struct ct_timeline_cursor c = {true, atoll(PQgetvalue(res, r, TL_AT)),
                                   atoll(PQgetvalue(res, r, TL_REC)),
                                   atoll(PQgetvalue(res, r, TL_ID)),
                                   atoi(PQgetvalue(res, r, TL_KIND)), false, 0, before};
    ct_cursor_timeline_encode(&c, out);
}

/* Whether a page is read backwards: the latest one, or the one before a 'b' cursor. The
 * statement and the reading of its answer must agree on it. */
static bool pages_back(bool latest, const struct ct_timeline_cursor *cur)
{
    return latest || (cur->set && cur->before);
}

/* The statement a timeline page runs (sql, with its parameters added to p). */
static const char *timeline_statement(long long ticket_id, int limit, bool latest,
                                      const struct ct_timeline_cursor *cur, struct ct_params *p)
{
    ct_param_ll(p, ticket_id);
    if (pages_back(latest, cur)) {
        key_params(p, cur, !latest, "infinity", limit + 1);
        return TIMELINE_BACK_SQL;
    }
    if (cur->since) {
        ct_param_ll(p, cur->since_seq);
        ct_param_ll(p, limit);
        return TIMELINE_SINCE_SQL;
    }
    key_params(p, cur, cur->set, "-infinity", limit + 1);
    return TIMELINE_SQL;
}

/* A page read backwards from the cursor's key (or from the end): the extra row read first,
 * when there is one, says that more lie before the page. */
static ct_rc timeline_back(const PGresult *res, int limit, bool latest, cJSON *items,
                           struct ct_timeline_page *page, struct ct_err *err)
{
    long long last_seq;
    int n = page_rows(res, &last_seq), first = n > limit ? 1 : 0;
    ct_rc rc = items_to_array(res, first, n, items, err);
    if (rc == CT_OK && first == 1)
        row_cursor(res, first, true, page->prev);
    /* after a page read backwards from a key lies that key, at least (an empty page has no
     * cursors: nothing lies before the key) */
    if (rc == CT_OK && !latest && n > first)
        row_cursor(res, n - 1, false, page->next);
    ct_cursor_since_encode(last_seq, page->resume);
    return rc;
}

/* Reads the answer of timeline_statement's statement into *items (made here) and page. */
static ct_rc timeline_read(const PGresult *res, int limit, bool latest,
                           const struct ct_timeline_cursor *cur, cJSON **items,
                           struct ct_timeline_page *page, struct ct_err *err)
{
    long long last_seq = 0;
    ct_rc rc;

    memset(page, 0, sizeof(*page));
    if (PQnfields(res) != TL_NCOLS)
        return ct_err_set(err, CT_E_INTERNAL, "internal",
                          "the timeline statement's columns changed");
    *items = cJSON_CreateArray();
    if (*items == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    if (pages_back(latest, cur)) {
        rc = timeline_back(res, limit, latest, *items, page, err);
        goto done;
    }
    int n = page_rows(res, &last_seq);
    if (cur->since) {
        /* the chain's next `limit` events and their messages; more after them: next too */
        long long upto = cur->since_seq + limit < last_seq ? cur->since_seq + limit : last_seq;
        rc = items_to_array(res, 0, n < 2 * limit + 1 ? n : 2 * limit + 1, *items, err);
        ct_cursor_since_encode(upto > cur->since_seq ? upto : cur->since_seq, page->resume);
        if (upto < last_seq)
            memcpy(page->next, page->resume, CT_CURSOR_MAX);
    } else {
        rc = items_to_array(res, 0, n < limit ? n : limit, *items, err);
        if (rc == CT_OK && n > limit)
            row_cursor(res, limit - 1, false, page->next);
        /* a page after a key has that key, at least, before it */
        if (rc == CT_OK && cur->set && n > 0)
            row_cursor(res, 0, true, page->prev);
        ct_cursor_since_encode(last_seq, page->resume);
    }
done:
    if (rc != CT_OK) {
        cJSON_Delete(*items);
        *items = NULL;
    }
    return rc;
}

ct_rc ct_store_ticket_timeline(struct ct_tx *tx, long long ticket_id, int limit, bool latest,
                               const struct ct_timeline_cursor *cur, cJSON **ticket,
                               cJSON **items, struct ct_timeline_page *page, struct ct_err *err)
{
    struct ct_tx_step steps[2];
    ct_rc rc;

    memset(steps, 0, sizeof(steps));
    *ticket = *items = NULL;
    ct_store_ticket_by_id_step(&steps[0], ticket_id);
    steps[1].sql = timeline_statement(ticket_id, limit, latest, cur, &steps[1].p);
    /* one round trip, and (one sync point, no transaction open) one implicit transaction: the
     * ticket and its page are read in the same snapshot */
    rc = ct_tx_steps(tx, steps, 2, err);
    if (rc == CT_OK)
        rc = ct_store_ticket_by_id_read(steps[0].res, ticket_id, ticket, err);
    if (rc == CT_OK)
        rc = timeline_read(steps[1].res, limit, latest, cur, items, page, err);
    if (rc != CT_OK) {
        cJSON_Delete(*ticket);
        *ticket = NULL;
    }
    ct_tx_steps_clear(steps, 2);
    return rc;
}

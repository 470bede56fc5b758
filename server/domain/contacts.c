/* contacts.c: identity resolution for customers known by BSUID, phone number or both
 * (docs/DECISIONS.md#customer-identity). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "casetrail/contacts.h"
#include "casetrail/store.h"

const char *ct_contacts_link_name(enum ct_link link)
{
    static const char *const names[] = {"none",          "new",    "phone_added", "bsuid_added",
                                        "bsuid_changed", "merged", "number_changed"};
    return link >= CT_LINK_NONE && link <= CT_LINK_NUMBER_CHANGED ? names[link] : "none";
}

/* Follows merged_into to the contact that receives everything now (locking each row). */
static ct_rc follow(struct ct_tx *tx, struct ct_contact_row *row, struct ct_err *err)
{
    for (int hops = 0; row->merged_into != 0; hops++) {
        if (hops == 8)
            return ct_err_set(err, CT_E_INTERNAL, "internal", "contact %lld merges in a loop",
                              row->id);
        ct_rc rc = ct_store_contact_get(tx, row->merged_into, row, err);
        if (rc != CT_OK)
            return rc;
    }
    return CT_OK;
}

/* Finds the contacts by BSUID (a) and by phone number (b), following merges. */
static ct_rc find_both(struct ct_tx *tx, const struct ct_identity *who, struct ct_contact_row *a,
                       bool *has_a, struct ct_contact_row *b, bool *has_b, struct ct_err *err)
{
    ct_rc rc = CT_OK;
    *has_a = *has_b = false;
    if (who->user_id != NULL)
        rc = ct_store_contact_find(tx, who->phone_number_id, true, who->user_id, a, has_a, err);
    if (rc == CT_OK && *has_a)
        rc = follow(tx, a, err);
    if (rc == CT_OK && who->wa_id != NULL)
        rc = ct_store_contact_find(tx, who->phone_number_id, false, who->wa_id, b, has_b, err);
    if (rc == CT_OK && *has_b)
        rc = follow(tx, b, err);
    return rc;
}

/* Sets a new id (by_user: BSUID, else phone number) on contact; the old one, if any, becomes an
 * alias pointing at it, so a late delivery under the old id finds the same customer in
 * whatever order the webhooks come. */
static ct_rc replace_id(struct ct_tx *tx, const struct ct_contact_row *contact,
                        const char *phone_number_id, bool by_user, const char *value,
                        struct ct_err *err)
{
    const char *old = by_user ? contact->user_id : contact->wa_id;
    char keep[sizeof(contact->user_id)];
    ct_rc rc;

    snprintf(keep, sizeof(keep), "%s", old);
    rc = ct_store_contact_set_ids(tx, contact->id, by_user ? NULL : value, by_user ? value : NULL,
                                  NULL, err);
    if (rc == CT_OK && keep[0] != '\0')
        rc = ct_store_contact_alias(tx, phone_number_id, by_user, keep, contact->id, err);
    return rc;
}

ct_rc ct_contacts_resolve(struct ct_tx *tx, const struct ct_identity *who, struct ct_resolved *out,
                          struct ct_err *err)
{
    struct ct_contact_row a, b, c;
    bool has_a, has_b;
    ct_rc rc;

    memset(out, 0, sizeof(*out));
    rc = find_both(tx, who, &a, &has_a, &b, &has_b, err);
    if (rc == CT_OK && !has_a && !has_b) {
        rc = ct_store_contact_insert(tx, who->phone_number_id, who->wa_id, who->user_id, err);
        if (rc == CT_OK)
            rc = find_both(tx, who, &a, &has_a, &b, &has_b, err);
        if (rc == CT_OK && !has_a && !has_b)
            return ct_err_set(err, CT_E_INTERNAL, "internal", "contact vanished while locked");
        out->link = CT_LINK_NEW;
    }
    if (rc != CT_OK)
        return rc;
    if (has_a && has_b && a.id != b.id) {
        /* first seen by number, later by BSUID alone (or the other way round): one customer.
         * The earlier row survives, so the longer history keeps its contact id */
        struct ct_contact_row *keep = a.id < b.id ? &a : &b, *fold = a.id < b.id ? &b : &a;
        rc = ct_store_contact_merge(tx, fold->id, keep->id, err);
        out->contact_id = keep->id;
        out->link = CT_LINK_MERGED;
        out->merged_from = fold->id;
        return rc;
    }
    c = has_a ? a : b;
    out->contact_id = c.id;
    out->name_state = (int)c.name_state;
    memcpy(out->name, c.name, sizeof(out->name));
    if (out->link == CT_LINK_NEW) {
        if (who->parent_user_id != NULL)
            rc = ct_store_contact_set_ids(tx, c.id, NULL, NULL, who->parent_user_id, err);
        return rc;
    }
    /* an id some row already holds (this one, or one merged into it) is not added again:
     * the unique keys stay with the row that has them, and lookups follow merged_into */
    const char *add_wa = who->wa_id != NULL && !has_b && c.wa_id[0] == '\0' ? who->wa_id : NULL;
    const char *add_user = NULL;
    if (who->user_id != NULL && !has_a && strcmp(c.user_id, who->user_id) != 0) {
        add_user = who->user_id;
        out->link = c.user_id[0] == '\0' ? CT_LINK_BSUID_ADDED : CT_LINK_BSUID_CHANGED;
    }
    if (add_wa != NULL)
        out->link = CT_LINK_PHONE_ADDED;
    if (add_user != NULL && out->link == CT_LINK_BSUID_CHANGED && add_wa == NULL)
        return replace_id(tx, &c, who->phone_number_id, true, add_user, err);
    if (add_wa != NULL || add_user != NULL || who->parent_user_id != NULL)
        rc = ct_store_contact_set_ids(tx, c.id, add_wa, add_user, who->parent_user_id, err);
    return rc;
}

/* Gives contact the id (by_user: BSUID, else phone number) unless it has it; a contact that
 * holds it already folds into this one. */
static ct_rc take_id(struct ct_tx *tx, const struct ct_contact_row *contact,
                     const char *phone_number_id, bool by_user, const char *value, bool *changed,
                     struct ct_err *err)
{
    struct ct_contact_row other;
    bool found;
    ct_rc rc = ct_store_contact_find(tx, phone_number_id, by_user, value, &other, &found, err);
    if (rc == CT_OK && found)
        rc = follow(tx, &other, err);
    if (rc != CT_OK)
        return rc;
    if (found && other.id == contact->id)
        return CT_OK;
    *changed = true;
    if (found) /* the customer wrote from the new id before the change reached us */
        return ct_store_contact_merge(tx, other.id, contact->id, err);
    return replace_id(tx, contact, phone_number_id, by_user, value, err);
}

ct_rc ct_contacts_change_ids(struct ct_tx *tx, long long contact_id, const char *phone_number_id,
                             const char *new_wa_id, const char *new_user_id,
                             struct ct_resolved *out, struct ct_err *err)
{
    struct ct_contact_row c;
    bool wa_changed = false, user_changed = false;
    ct_rc rc = ct_store_contact_get(tx, contact_id, &c, err);

    memset(out, 0, sizeof(*out));
    out->contact_id = contact_id;
    if (rc == CT_OK && new_wa_id != NULL)
        rc = take_id(tx, &c, phone_number_id, false, new_wa_id, &wa_changed, err);
    if (rc == CT_OK && new_user_id != NULL)
        rc = take_id(tx, &c, phone_number_id, true, new_user_id, &user_changed, err);
    if (wa_changed)
        out->link = CT_LINK_NUMBER_CHANGED;
    else if (user_changed)
        out->link = CT_LINK_BSUID_CHANGED;
    return rc;
}

ct_rc ct_contacts_find_by_user(struct ct_tx *tx, const char *phone_number_id, const char *user_id,
                               long long *contact_id, bool *found, struct ct_err *err)
{
    struct ct_contact_row c;
    ct_rc rc = ct_store_contact_find(tx, phone_number_id, true, user_id, &c, found, err);
    if (rc == CT_OK && *found)
        rc = follow(tx, &c, err);
    *contact_id = *found ? c.id : 0;
    return rc;
}

ct_rc ct_contacts_record_link(struct ct_tx *tx, long long ticket_id, const struct ct_identity *who,
                              const struct ct_resolved *r, const char *scope, long long at_us,
                              struct ct_err *err)
{
    static const struct ct_actor whatsapp = {CT_ACTOR_SYSTEM, "whatsapp", NULL, NULL};
    struct ct_event_new ev;
    cJSON *data;
    ct_rc rc;

    if (r->link == CT_LINK_NONE || r->link == CT_LINK_NEW)
        return CT_OK;
    ct_event_begin(&ev, CT_CHAIN_TICKET, ticket_id, CT_EV_CONTACT_LINKED, &whatsapp);
    ev.to_value = ct_contacts_link_name(r->link);
    ev.occurred_us = at_us;
    /* ids of a person are the contact's texts: erasing the contact erases them */
    ct_event_text(&ev, "wa_id", who->wa_id, scope);
    ct_event_text(&ev, "user_id", who->user_id, scope);
    data = cJSON_CreateObject();
    if (data == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    cJSON_AddNumberToObject(data, "contact_id", (double)r->contact_id);
    if (r->link == CT_LINK_MERGED)
        cJSON_AddNumberToObject(data, "merged_from", (double)r->merged_from);
    ev.data = data;
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    return rc;
}

/* contacts.h: who a customer is. Since 2026 a WhatsApp user may be known by a business-scoped
 * user id (BSUID), a phone number, or both; casetrail keeps one contact per customer and one
 * ticket history, linking the two ids when a webhook first carries both. */
#ifndef CASETRAIL_CONTACTS_H
#define CASETRAIL_CONTACTS_H

#include <stdbool.h>

#include "casetrail/err.h"

/* the store's handle, used by pointer only */
struct ct_tx;

/* The ids a webhook carried for one customer of one business number. Borrowed strings; any
 * of wa_id and user_id may be NULL, but not both. */
struct ct_identity {
    const char *phone_number_id;
    const char *wa_id;
    const char *user_id;
    const char *parent_user_id;
};

enum ct_link {
    CT_LINK_NONE = 0,     /* known as it was */
    CT_LINK_NEW,          /* first seen now */
    CT_LINK_PHONE_ADDED,  /* known by BSUID, now also by phone number */
    CT_LINK_BSUID_ADDED,  /* known by phone number, now also by BSUID (every 2026 webhook) */
    CT_LINK_BSUID_CHANGED,/* the phone number came with another BSUID: the newer one is kept */
    CT_LINK_MERGED,       /* two contacts turned out to be one: the later folds into the earlier */
    CT_LINK_NUMBER_CHANGED /* the customer announced a new number (and with it a new BSUID) */
};

struct ct_resolved {
    long long contact_id;  /* the contact, locked for the rest of the transaction */
    enum ct_link link;
    long long merged_from; /* CT_LINK_MERGED: the contact folded in */
    int name_state;        /* the contact's stored name: CT_NAME_* of struct ct_contact_row */
    char name[256];
};

/* Finds (or creates) and locks the contact of who, linking ids as described above. Locks are
 * taken BSUID row first, then phone row, in every transaction, so concurrent deliveries about
 * one customer serialise without deadlocks. */
ct_rc ct_contacts_resolve(struct ct_tx *tx, const struct ct_identity *who, struct ct_resolved *out,
                          struct ct_err *err);

/* Moves contact_id (locked) to the ids a system message or user_id_update announced (each may
 * be NULL): an id no row holds is set on it; an id another contact holds folds that contact
 * into this one, so the customer keeps one history. out->link says what happened (NONE when
 * nothing changed). */
ct_rc ct_contacts_change_ids(struct ct_tx *tx, long long contact_id, const char *phone_number_id,
                             const char *new_wa_id, const char *new_user_id,
                             struct ct_resolved *out, struct ct_err *err);

/* Finds and locks the contact that holds user_id (following merges); *found false when none. */
ct_rc ct_contacts_find_by_user(struct ct_tx *tx, const char *phone_number_id, const char *user_id,
                               long long *contact_id, bool *found, struct ct_err *err);

/* Records a link (anything but NONE and NEW) as event contact.linked on ticket_id, actor
 * whatsapp, with the ids as the contact's texts (scope) so erasure can remove them. */
ct_rc ct_contacts_record_link(struct ct_tx *tx, long long ticket_id, const struct ct_identity *who,
                              const struct ct_resolved *r, const char *scope, long long at_us,
                              struct ct_err *err);

/* The name of a link for events and the API ("bsuid_added" ...). */
const char *ct_contacts_link_name(enum ct_link link);

#endif

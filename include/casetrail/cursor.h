/* cursor.h: the keyset cursors of every list, made and read in one place. A cursor is opaque
 * to clients (docs/DECISIONS.md#list-limits-and-cursors): a letter naming the list and the
 * sort key of the last row given, as non-negative integers joined by '_'. */
#ifndef CASETRAIL_CURSOR_H
#define CASETRAIL_CURSOR_H

#include <stdbool.h>

#define CT_CURSOR_MAX 96

/* GET /api/tickets: newest activity first, by (updated_at, id). */
struct ct_ticket_cursor {
    bool set;
    long long updated_us, id;
};

/* GET /api/tickets/{id}/timeline: by (occurred, recorded, kind, id); kind 0 message, 1 event.
 * 'l' pages on after the key, 'b' (before) back towards the start: a long ticket opens at its
 * latest page and reads backwards. A resume cursor ('s', since) instead names the chain seq a
 * reader had seen: what was recorded after it, whatever its time (a late webhook's message
 * sorts earlier than events already shown, and must still be found). */
struct ct_timeline_cursor {
    bool set;
    long long at_us, rec_us, id;
    int kind;
    bool since;
    long long since_seq;
    bool before;
};

/* Lists ordered by id alone, newest first: approvals ('a'), webhook rejects ('r'). */
struct ct_id_cursor {
    bool set;
    long long id;
};

/* Encoders write a NUL-terminated cursor into out[CT_CURSOR_MAX]. Decoders accept exactly what
 * the encoders write (times within years 1970 to 9999, ids positive) and return false for
 * anything else, leaving the cursor unset. */
void ct_cursor_ticket_encode(const struct ct_ticket_cursor *c, char out[CT_CURSOR_MAX]);
bool ct_cursor_ticket_decode(const char *s, struct ct_ticket_cursor *c);
void ct_cursor_timeline_encode(const struct ct_timeline_cursor *c, char out[CT_CURSOR_MAX]);
bool ct_cursor_timeline_decode(const char *s, struct ct_timeline_cursor *c);
void ct_cursor_since_encode(long long seq, char out[CT_CURSOR_MAX]);
/* tag names the list, so one list's cursor is refused by another. */
void ct_cursor_id_encode(char tag, const struct ct_id_cursor *c, char out[CT_CURSOR_MAX]);
bool ct_cursor_id_decode(char tag, const char *s, struct ct_id_cursor *c);

/* Lists ordered by a time and then an id: events across tickets ('e', by occurred_at, oldest
 * first) and the access log ('g', by at, newest first). */
struct ct_at_cursor {
    bool set;
    long long at_us, id;
};

void ct_cursor_at_encode(char tag, const struct ct_at_cursor *c, char out[CT_CURSOR_MAX]);
bool ct_cursor_at_decode(char tag, const char *s, struct ct_at_cursor *c);

#endif

/* test_auth.c: token shape and hashing, bearer parsing, roles. */
#include "casetrail/auth.h"
#include "casetrail/users.h"
#include "t.h"

int main(void)
{
    char a[CT_TOKEN_LEN + 1], b[CT_TOKEN_LEN + 1];
    char h[CT_TOKEN_HASH_LEN + 1];

    CHECK(ct_auth_token_new(a));
    CHECK(ct_auth_token_new(b));
    CHECK(strlen(a) == CT_TOKEN_LEN);
    CHECK(strncmp(a, "ct_", 3) == 0);
    CHECK(strcmp(a, b) != 0);
    CHECK(ct_auth_token_well_formed(a));
    CHECK(!ct_auth_token_well_formed("ct_short"));
    CHECK(!ct_auth_token_well_formed(NULL));
    b[10] = '!';
    CHECK(!ct_auth_token_well_formed(b));

    /* known answer: SHA-256("abc") */
    ct_auth_token_hash("abc", h);
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    CHECK_STR(ct_auth_bearer("Bearer xyz"), "xyz");
    CHECK_STR(ct_auth_bearer("bearer   xyz"), "xyz");
    CHECK(ct_auth_bearer("Basic xyz") == NULL);
    CHECK(ct_auth_bearer("Bearer ") == NULL);
    CHECK(ct_auth_bearer(NULL) == NULL);

    CHECK(ct_role_parse("supervisor") == CT_ROLE_SUPERVISOR);
    CHECK(ct_role_parse("root") == CT_ROLE_NONE);
    CHECK_STR(ct_role_name(CT_ROLE_QA), "qa");
    CHECK(ct_auth_role_at_least(CT_ROLE_QA, CT_ROLE_NONE));
    CHECK(!ct_auth_role_at_least(CT_ROLE_QA, CT_ROLE_AGENT));
    CHECK(ct_auth_role_at_least(CT_ROLE_ADMIN, CT_ROLE_SUPERVISOR));
    CHECK(!ct_auth_role_at_least(CT_ROLE_AGENT, CT_ROLE_SUPERVISOR));
    CHECK(!ct_auth_role_at_least(CT_ROLE_SUPERVISOR, CT_ROLE_ADMIN));
    CHECK(!ct_auth_role_at_least(CT_ROLE_NONE, CT_ROLE_NONE));

    CHECK(ct_users_name_valid("amna.k"));
    CHECK(ct_users_name_valid("sup@example.com"));
    CHECK(!ct_users_name_valid(""));
    CHECK(!ct_users_name_valid("-lead"));
    CHECK(!ct_users_name_valid("a b"));
    CHECK(!ct_users_name_valid("<script>"));
    T_DONE();
}

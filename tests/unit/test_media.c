/* test_media.c: the media worker's pure parts: matching the webhook's sha256 (base64 or hex)
 * against the bytes' hash, and the stored file's path. */
#include <stdbool.h>

#include "casetrail/media.h"
#include "t.h"

/* SHA-256 of "abc" */
#define HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define B64 "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="

int main(void)
{
    char path[32];

    CHECK(ct_media_sha_matches(B64, HEX));
    CHECK(ct_media_sha_matches(HEX, HEX));
    CHECK(ct_media_sha_matches("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                               HEX));
    CHECK(ct_media_sha_matches("", HEX));   /* nothing to check against */
    CHECK(ct_media_sha_matches(NULL, HEX));
    CHECK(!ct_media_sha_matches("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa1=", HEX));
    CHECK(!ct_media_sha_matches("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0", HEX));
    CHECK(!ct_media_sha_matches("ca7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                                HEX));
    CHECK(!ct_media_sha_matches("not a hash", HEX));
    CHECK(!ct_media_sha_matches(B64, "zz"));

    CHECK(ct_media_path("/m", "ab", path, sizeof(path)));
    CHECK_STR(path, "/m/ab");
    CHECK(!ct_media_path("/media/dir", HEX, path, sizeof(path))); /* does not fit: refused */
    T_DONE();
}

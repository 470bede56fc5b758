/* main.c: hands argv to the command line; nothing else. */
#include "casetrail/cli.h"

int main(int argc, char **argv)
{
    return ct_cli_main(argc, argv);
}

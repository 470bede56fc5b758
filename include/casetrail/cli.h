/* cli.h: the command line (serve | migrate | user ...). Usage errors exit 2. */
#ifndef CASETRAIL_CLI_H
#define CASETRAIL_CLI_H

/* Runs the command in argv and returns the process exit code. */
int ct_cli_main(int argc, char **argv);

#endif

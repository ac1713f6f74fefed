/* failpoint.c -- see failpoint.h. */
#include "failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void failpoint(const char *name)
{
    const char *list = getenv("SHALE_FAILPOINTS");
    if (!list || !*list)
        return;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) {
            kill(getpid(), SIGKILL);
            pause();
        }
        if (!end)
            break;
        p = end + 1;
    }
}

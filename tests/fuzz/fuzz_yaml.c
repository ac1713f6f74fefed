/*
 * fuzz_yaml.c -- libFuzzer target: arbitrary bytes through the YAML/JSON
 * reader every agent input uses (config, requests, kubeconfig), then
 * through the agent config loader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "config.h"
#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL, *marks = NULL;
    if (yamljson_parse("fuzz", (const char *)data, size, &j, &marks) == SHALE_OK) {
        json_decref(j);
        json_decref(marks);
    }
    char path[] = "/tmp/shale-fuzz-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        agent_config c;
        if (agent_config_defaults(&c) == SHALE_OK) {
            agent_config_load(&c, path);
            agent_config_check(&c);
        }
        agent_config_free(&c);
    }
    close(fd);
    unlink(path);
    return 0;
}

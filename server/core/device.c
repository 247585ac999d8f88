/* device.c - see device.h. Reads /proc/net/route and /sys/class/net/<if>/address, and the
 * interface addresses (getifaddrs). */
#include "core/device.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

er_rc device_default_iface(const char *route_text, char *iface, size_t iface_size)
{
    /* Columns: Iface Destination Gateway Flags ...; the default route has Destination 0. */
    const char *line = strchr(route_text, '\n'); /* skip the header */
    while (line && *++line) {
        char name[64], dest[16];
        if (sscanf(line, "%63s %15s", name, dest) == 2 && strcmp(dest, "00000000") == 0) {
            if (strlen(name) + 1 > iface_size) return ER_TOOBIG;
            strcpy(iface, name);
            return ER_OK;
        }
        line = strchr(line, '\n');
    }
    return ER_NOTFOUND;
}

static er_rc read_small_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) return ER_IO;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return ER_OK;
}

er_rc device_name_resolve(const char *base, bool mac_suffix, char *out, size_t out_size)
{
    char route[8192], iface[64], path[128], mac[64], suffix[32] = "";
    if (mac_suffix && read_small_file("/proc/net/route", route, sizeof route) == ER_OK &&
        device_default_iface(route, iface, sizeof iface) == ER_OK) {
        snprintf(path, sizeof path, "/sys/class/net/%s/address", iface);
        if (read_small_file(path, mac, sizeof mac) == ER_OK) {
            size_t o = 0;
            for (const char *p = mac; *p && *p != '\n' && o + 1 < sizeof suffix; p++)
                if (*p != ':') suffix[o++] = *p;
            suffix[o] = '\0';
        }
    }
    if (mac_suffix && !suffix[0])
        log_warn("device", "no default-route interface MAC found; device name is '%s'", base);
    int n = suffix[0] ? snprintf(out, out_size, "%s_%s", base, suffix)
                      : snprintf(out, out_size, "%s", base);
    return n < 0 || (size_t)n >= out_size ? ER_TOOBIG : ER_OK;
}

er_rc device_lan_address(char *out, size_t out_size)
{
    char route[8192], iface[64];
    struct ifaddrs *all = NULL;
    er_rc rc = ER_NOTFOUND;
    if (read_small_file("/proc/net/route", route, sizeof route) != ER_OK ||
        device_default_iface(route, iface, sizeof iface) != ER_OK || getifaddrs(&all) != 0)
        goto done;
    for (const struct ifaddrs *i = all; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, iface) != 0)
            continue;
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)i->ifa_addr;
        rc = inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)out_size) ? ER_OK : ER_TOOBIG;
        break;
    }
done:
    if (all) freeifaddrs(all);
    return rc;
}

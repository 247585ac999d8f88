/* device.h - the device name the Edge Impulse components use: device_name + "_" + the MAC of
 * the default-route interface without colons (e.g. MyEdgeImpulseDevice_0242ac110002). */
#ifndef EI_CORE_DEVICE_H
#define EI_CORE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/rc.h"

/* Writes the effective name into out. With mac_suffix false, or when no default route or MAC
 * can be found (then logged), the base name is used as is. */
er_rc device_name_resolve(const char *base, bool mac_suffix, char *out, size_t out_size);

/* Pure helper: the interface of the default route in /proc/net/route text, or ER_NOTFOUND. */
er_rc device_default_iface(const char *route_text, char *iface, size_t iface_size);

/* The IPv4 address of the default-route interface as text ("192.168.1.20"), the address a
 * person on the LAN opens the dashboard at; ER_NOTFOUND when there is none. */
er_rc device_lan_address(char *out, size_t out_size);

#endif

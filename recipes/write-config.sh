#!/usr/bin/env bash
# write-config.sh - turns the Greengrass component configuration of com.edgeimpulse.EiRelay into
# the JSON file that `ei-relay --config FILE` reads.
#
# The recipe's Lifecycle Setenv passes every configuration key as EIR_<KEY IN UPPER CASE>
# (e.g. {configuration:/device_name} -> EIR_DEVICE_NAME), plus the Greengrass paths:
#   EIR_GG_WORK   {work:path}        the component's work directory (database, token file)
#   EIR_GG_ROOT   {kernel:rootPath}  the Greengrass root (device certificate, key, root CA)
#   EIR_GG_THING  {iot:thingName}    the core device's thing name
# Values stay strings, as in the Edge Impulse recipes; ei-relay accepts numbers and booleans
# ("yes"/"no") given as strings, and "__none__" as unset. `sources` and `tokens` are JSON
# arrays and are copied as JSON when they look like one.
#
# Usage: write-config.sh OUTPUT_FILE
# Writes OUTPUT_FILE atomically with mode 0600 (it may hold API tokens).
set -euo pipefail

out=${1:?usage: write-config.sh OUTPUT_FILE}

# Every key the recipe's DefaultConfiguration carries, in the order they are written.
keys=(
    # ei-relay settings
    http_port ws_port bind db_path db_synchronous web_root log_level tokens token_file
    cache_max_rows cache_max_bytes cache_max_age thumbnail_px sources device_mac_suffix
    mqtt_endpoint mqtt_port mqtt_ca mqtt_cert mqtt_key mqtt_client_id
    # Edge Impulse seed keys (acted on)
    device_name iotcore_backoff iotcore_qos publish_inference_base64_image
    enable_threshold_limit default_threshold threshold_criteria metrics_sleeptime_ms s3_bucket
    # Edge Impulse seed keys (accepted, reported once as ignored)
    enable_cache_to_file cache_file_directory ei_poll_sleeptime_ms sleep_time_sec
    lock_filename gst_args eiparams ei_bindir ei_sm_secret_id ei_sm_secret_name
    ei_ggc_user_groups install_kvssink node_version vips_version launch enable_cache_to_s3
    ei_local_model_file ei_shutdown_behavior
)

die() {
    echo "write-config: $*" >&2
    exit 1
}

# JSON string escaping. Control characters other than tab, newline and carriage return have
# no business in a setting, so they are refused rather than encoded.
json_string() {
    local s=$1 LC_ALL=C
    local bad=$'[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]'
    if [[ $s =~ $bad ]]; then
        return 1
    fi
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}

# A value is unset when it is missing, empty, "__none__", or a recipe variable Greengrass
# left as is (a key missing from the merged configuration is not interpolated).
is_unset() {
    [[ -z $1 || $1 == "__none__" || $1 =~ ^\{configuration:.*\}$ ]]
}

value_of() {
    local key=$1 var
    var="EIR_$(printf '%s' "$key" | tr '[:lower:]' '[:upper:]')"
    printf '%s' "${!var-}"
}

gg_work=${EIR_GG_WORK:-}
gg_root=${EIR_GG_ROOT:-}
gg_thing=${EIR_GG_THING:-}

# Greengrass defaults for what the configuration leaves unset. The device certificate, key
# and root CA are the files the Greengrass installer writes into its root folder when it
# provisions the device; GG_ROOT_CA_PATH (nucleus >= 2.5.5) names the CA the nucleus uses.
default_for() {
    case $1 in
    db_path) [[ -n $gg_work ]] && printf '%s/ei-relay.db' "$gg_work" ;;
    web_root) printf '/usr/local/share/ei-relay/web' ;;
    mqtt_client_id) [[ -n $gg_thing ]] && printf '%s-ei-relay' "$gg_thing" ;;
    mqtt_cert) [[ -n $gg_root ]] && printf '%s/thingCert.crt' "$gg_root" ;;
    mqtt_key) [[ -n $gg_root ]] && printf '%s/privKey.key' "$gg_root" ;;
    mqtt_ca)
        if [[ -n ${GG_ROOT_CA_PATH:-} ]]; then
            printf '%s' "$GG_ROOT_CA_PATH"
        elif [[ -n $gg_root ]]; then
            printf '%s/rootCA.pem' "$gg_root"
        fi
        ;;
    esac
    return 0
}

body=""
for key in "${keys[@]}"; do
    value=$(value_of "$key")
    if is_unset "$value"; then
        value=$(default_for "$key")
        is_unset "$value" && continue
    fi
    case $key in
    sources | tokens)
        # Given as a JSON array (Greengrass passes an array value as its JSON text); anything
        # else is written as a string so ei-relay reports it with the key's name.
        if [[ $value =~ ^[[:space:]]*\[ ]]; then
            encoded=$value
        else
            encoded=$(json_string "$value") || die "$key: control characters are not allowed"
        fi
        ;;
    *)
        encoded=$(json_string "$value") || die "$key: control characters are not allowed"
        ;;
    esac
    body+="${body:+,
}  \"$key\": $encoded"
done

dir=$(dirname -- "$out")
mkdir -p -- "$dir"
umask 077
tmp=$(mktemp "$dir/.ei-relay.json.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
printf '{\n%s\n}\n' "$body" >"$tmp"
mv -f -- "$tmp" "$out"
trap - EXIT
echo "write-config: wrote $out"

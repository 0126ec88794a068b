"""Runs the public `optimove` Python client (PyPI 2.0.0) against a custdata server.

Logs in twice in a row with a Login user, then calls every read method of the client once
with plausible parameters, and prints what each answered as counts only (never a
customer's id, a token or a password). Exits 1 if any call raised or answered a failed
call (the client returns False for a status it does not handle), 2 on bad usage.

Usage: optimove_client.py BASE_URL USERNAME PASSWORD [ATTRIBUTE [CUSTOMER_ID]]
or the environment: OPTIMOVE_URL, OPTIMOVE_USERNAME, OPTIMOVE_PASSWORD,
OPTIMOVE_ATTRIBUTE (an attribute of GetCustomerAttributeList; default: the first listed),
OPTIMOVE_CUSTOMER_ID (a customer to ask about; default C-1).

Dates come from the server, not from this machine's clock: the server's today is the day
after its GetLastDataUpdate (a test server may run on a clock of its own).
"""

import datetime
import os
import sys
import traceback

from optimove.client import Client


def arguments():
    names = ["OPTIMOVE_URL", "OPTIMOVE_USERNAME", "OPTIMOVE_PASSWORD", "OPTIMOVE_ATTRIBUTE", "OPTIMOVE_CUSTOMER_ID"]
    values = [os.environ.get(name) for name in names]
    for index, value in enumerate(sys.argv[1:6]):
        values[index] = value
    url, username, password, attribute, customer = values
    if not url or not username or not password:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    return url.rstrip("/"), username, password, attribute, customer or "C-1"


def describe(result):
    """What a call answered, as counts."""
    if isinstance(result, (list, tuple)):
        return "%d entries" % len(result)
    if isinstance(result, dict):
        present = sum(1 for value in result.values() if value is not None)
        return "%d keys, %d with a value" % (len(result), present)
    if isinstance(result, str):
        return "a string of %d characters" % len(result)
    if result is None:
        return "null (no such object)"
    return "a %s" % type(result).__name__


def main():
    url, username, password, attribute, customer = arguments()
    secrets = [password]
    client = Client(url=url)
    failures = []

    def redacted(text):
        for secret in secrets + [customer]:
            if secret:
                text = text.replace(secret, "<redacted>")
        return text

    first = client.general.login(username, password)
    second = client.general.login(username, password)
    for number, token in ((1, first), (2, second)):
        if isinstance(token, str) and token:
            secrets.append(token)
            print("OK general.login #%d: a token of %d characters" % (number, len(token)))
        else:
            failures.append("general.login #%d" % number)
            print("FAIL general.login #%d: answered %s" % (number, type(token).__name__))
    print("login #2 answered the same token as #1: %s" % (first == second))

    calls = 0

    def call(name, method, *args, **kwargs):
        nonlocal calls
        calls += 1
        try:
            result = method(*args, **kwargs)
        except Exception as error:  # the point of the test: no method may raise
            failures.append(name)
            print("FAIL %s: %s: %s" % (name, type(error).__name__, redacted(str(error))[:300]))
            print(redacted("".join(traceback.format_exception(error))[-1500:]), file=sys.stderr)
            return None
        if result is False:
            failures.append(name)
            print("FAIL %s: the client answered False (the call was not a success)" % name)
            return None
        print("OK %s: %s" % (name, describe(result)))
        return result

    general, model, actions, groups = client.general, client.model, client.actions, client.groups
    segments, customers, integrations = client.segments, client.customers, client.integrations

    last_update = call("general.get_last_data_update", general.get_last_data_update)
    try:
        yesterday = datetime.date.fromisoformat(last_update)
    except (TypeError, ValueError):
        failures.append("general.get_last_data_update is a date")
        yesterday = datetime.date.today() - datetime.timedelta(days=1)
    today = yesterday + datetime.timedelta(days=1)
    day, start, end = today.isoformat(), yesterday.isoformat(), today.isoformat()
    print("server dates: last data update = server's yesterday; today is the day after")

    catalog = call("model.get_customer_attribute_list", model.get_customer_attribute_list) or {}
    if not attribute and catalog:
        attribute = sorted(catalog)[0]
    listed = attribute is not None and attribute in catalog
    print("attribute list: %d attributes; %s listed: %s" % (len(catalog), attribute, listed))
    if not listed:
        failures.append("the attribute is listed")
    attributes = [attribute] if attribute else None

    call("model.get_lifecycle_stage_list", model.get_lifecycle_stage_list)
    call("model.get_microsegment_list", model.get_microsegment_list)
    call("model.get_microsegment_changers", model.get_microsegment_changers, start, end, attributes)

    call("actions.get_action_name", actions.get_action_name, 12)
    call("actions.get_action_id", actions.get_action_id, "Spring offer")
    call("actions.get_all_actions", actions.get_all_actions)
    call("actions.get_actions_by_target_group", actions.get_actions_by_target_group, 3, day)
    call("actions.get_promo_codes", actions.get_promo_codes, day)
    call("actions.get_promo_codes_by_campaign", actions.get_promo_codes_by_campaign, 7)
    call("actions.get_promo_codes_by_target_group", actions.get_promo_codes_by_target_group, 3, day)
    call("actions.get_action_details_by_target_group", actions.get_action_details_by_target_group, 3, day)
    call("actions.get_executed_campaign_details", actions.get_executed_campaign_details, day)
    call("actions.get_campaign_details", actions.get_campaign_details, 7)
    call("actions.get_execution_channels", actions.get_execution_channels)
    call("actions.get_executed_campaign_channel_details", actions.get_executed_campaign_channel_details, 7, 4)
    call("actions.get_executed_campaigns_by_channel", actions.get_executed_campaigns_by_channel, 4, day)

    call("groups.get_target_group_name", groups.get_target_group_name, 3)
    call("groups.get_target_group_id", groups.get_target_group_id, "Lapsed buyers")
    call("groups.get_target_groups_by_date", groups.get_target_groups_by_date, day)
    call("groups.get_target_group_details", groups.get_target_group_details)

    call("segments.get_value_segment_name", segments.get_value_segment_name, 1)
    call("segments.get_value_segment_id", segments.get_value_segment_id, "High value")
    call("segments.get_value_segments", segments.get_value_segments)
    call("segments.get_customers_by_value_segment", segments.get_customers_by_value_segment, 1, day, attributes)
    call("segments.get_value_segment_changers", segments.get_value_segment_changers, start, end, attributes)

    call("customers.get_customers_by_action", customers.get_customers_by_action, 1, 12, day, attributes, top=100)
    call("customers.get_customer_actions_by_target_group", customers.get_customer_actions_by_target_group, 3, day,
         include_control_group=True, attributes=attributes, include_recipient_group_id=True, channel_id=4)
    call("customers.get_customer_one_time_actions_by_date", customers.get_customer_one_time_actions_by_date, day,
         include_control_group=True, attributes=attributes)
    call("customers.get_target_group_changers", customers.get_target_group_changers, start, end, attributes)
    changers = call("customers.get_customer_attribute_changers", customers.get_customer_attribute_changers,
                    start, end, attribute, attributes, top=1000)
    if changers is not None:
        valued = sum(1 for entry in changers if (entry.get("attributes") or {}).get(attribute) is not None)
        finals = sum(1 for entry in changers if entry.get("final_customer_attribute") is not None)
        print("attribute changers of %s: %d customers, %d with a final value, %d with a current value"
              % (attribute, len(changers), finals, valued))
    call("customers.get_customer_future_values (by stage)", customers.get_customer_future_values, life_cycle_stage_id=1)
    call("customers.get_customer_future_values (by attribute)", customers.get_customer_future_values,
         attribute=attribute, attribute_value="Gold")
    call("customers.get_customer_last_action_executed", customers.get_customer_last_action_executed, customer)
    call("customers.get_customer_action_details_by_date", customers.get_customer_action_details_by_date, day)
    call("customers.get_customers_action_ended_by_date", customers.get_customers_action_ended_by_date, day)
    call("customers.get_customer_send_details_by_campaign", customers.get_customer_send_details_by_campaign, 7,
         include_templates_ids=True)
    call("customers.get_customer_send_details_by_channel", customers.get_customer_send_details_by_channel, 4, 7,
         attributes)
    call("customers.get_currently_targeted_customers", customers.get_currently_targeted_customers, top=100)
    call("customers.get_canceled_campaign_customers", customers.get_canceled_campaign_customers, 7)

    call("integrations.get_promotions", integrations.get_promotions)
    call("integrations.get_channel_templates", integrations.get_channel_templates, 4)

    print("calls after login: %d" % calls)
    if failures:
        print("FAILED: %d of them: %s" % (len(failures), ", ".join(failures)))
        return 1
    print("all read methods answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())

//! The schema types the vendor documents, with the fields of the product type.

use serde_json::{Map, Value, json};

/// The schema types and what each holds.
pub const SCHEMA_TYPES: [(&str, &str); 11] = [
    ("agil_one", "customer data synchronised from AgilOne"),
    ("attribute", "customer attributes, one set per customer"),
    ("behavioral_trigger", "behavioral triggers"),
    ("custom_list", "custom lists"),
    ("customer_data_privacy", "customer data privacy requests"),
    ("email_metadata", "email metadata"),
    ("event", "time-stamped customer events"),
    ("inventory", "inventory levels"),
    ("product", "product catalog entries"),
    ("product_recommendation", "product recommendations"),
    ("purchase", "purchases"),
];

/// The product type's fields as the vendor's SchemaType example lists them: name, data type,
/// required. `id` is the identifier and the unique key; no other field has a role.
pub const PRODUCT_FIELDS: [(&str, &str, bool); 40] = [
    ("id", "STRING", true),
    ("title", "STRING", true),
    ("description", "STRING", true),
    ("link", "STRING", true),
    ("image_link", "STRING", true),
    ("additional_image_link", "STRING", false),
    ("mobile_link", "STRING", false),
    ("availability", "STRING", false),
    ("availability_date", "DATETIME", false),
    ("expiration_date", "DATETIME", false),
    ("price", "NUMBER", true),
    ("sale_price", "NUMBER", false),
    ("sale_price_effective_date_begin", "DATETIME", false),
    ("sale_price_effective_date_end", "DATETIME", false),
    ("loyalty_points", "STRING", false),
    ("product_type", "STRING", true),
    ("brand", "STRING", false),
    ("mpn", "STRING", false),
    ("condition", "STRING", false),
    ("adult", "BOOLEAN", false),
    ("multipack", "NUMBER", false),
    ("is_bundle", "BOOLEAN", false),
    ("energy_efficiency_class", "STRING", false),
    ("age_group", "STRING", false),
    ("color", "STRING", false),
    ("gender", "STRING", false),
    ("material", "STRING", false),
    ("pattern", "STRING", false),
    ("quantity", "NUMBER", false),
    ("size", "STRING", false),
    ("size_type", "STRING", false),
    ("item_group_id", "STRING", false),
    ("promotion_id", "STRING", false),
    ("shipping", "STRING", false),
    ("shipping_label", "STRING", false),
    ("shipping_weight", "STRING", false),
    ("shipping_length", "STRING", false),
    ("shipping_height", "STRING", false),
    ("shipping_width", "STRING", false),
    ("tax", "STRING", false),
];

/// The fields a schema type prescribes, every flag spelled out as the vendor shows them.
/// Only the product type prescribes fields in the vendor's documents; the others are `{}`
/// (the SchemaType `fields` map may be empty).
fn type_fields(name: &str) -> Map<String, Value> {
    if name != "product" {
        return Map::new();
    }
    PRODUCT_FIELDS
        .iter()
        .map(|(field, data_type, required)| {
            let key = *field == "id";
            let definition = json!({
                "data_type": data_type,
                "identifier": key,
                "unique_key": key,
                "event_time": false,
                "required": required,
            });
            (field.to_string(), definition)
        })
        .collect()
}

/// The schema types as the API lists them: `name` and `fields` (the vendor's SchemaType),
/// and a `description` (additive).
pub fn schema_types() -> Vec<Value> {
    SCHEMA_TYPES
        .iter()
        .map(|(name, description)| {
            json!({"name": name, "fields": type_fields(name), "description": description})
        })
        .collect()
}

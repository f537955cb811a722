# The image ledger's Firestore database (native mode), its composite indexes, TTL on processed-event markers, and deny-all rules.

locals {
  firestore_database = "(default)"

  # The repository's firestore.indexes.json is the source of truth; the module adds the indexes its own jobs need.
  firestore_indexes_doc = jsondecode(file(coalesce(var.firestore_indexes_file, "${var.source_dir}/firestore.indexes.json")))

  module_firestore_indexes = [
    # Base-image watcher: images built on a tracked base tag whose base digest is not the current one.
    {
      collectionGroup = "images"
      queryScope      = "COLLECTION"
      fields = [
        { fieldPath = "base.name", order = "ASCENDING" },
        { fieldPath = "base.digest", order = "ASCENDING" },
      ]
    },
  ]

  # Keyed by content, so an index listed in both places is created once.
  firestore_index_groups = {
    for idx in concat(local.module_firestore_indexes, try(local.firestore_indexes_doc.indexes, [])) :
    join(" ", concat(
      [idx.collectionGroup, try(idx.queryScope, "COLLECTION")],
      [for f in idx.fields : "${f.fieldPath}:${try(f.order, f.arrayConfig)}"],
    )) => idx...
  }
  firestore_indexes = { for key, group in local.firestore_index_groups : key => group[0] }

  # Field overrides (TTL, single-field index exemptions) from the same file; events.expireAt is declared below.
  firestore_field_overrides = {
    for o in try(local.firestore_indexes_doc.fieldOverrides, []) : "${o.collectionGroup}/${o.fieldPath}" => o
    if "${o.collectionGroup}/${o.fieldPath}" != "events/expireAt"
  }
}

resource "google_firestore_database" "clearance" {
  count = var.create_firestore_database ? 1 : 0

  project     = var.project_id
  name        = local.firestore_database
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"

  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.apis]
}

resource "google_firestore_index" "clearance" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = local.firestore_database
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }

  depends_on = [google_firestore_database.clearance]
}

# Processed-event markers expire by themselves; no single-field index on the TTL timestamp (avoids hotspots).
resource "google_firestore_field" "events_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "events"
  field      = "expireAt"

  ttl_config {}
  index_config {}

  depends_on = [google_firestore_database.clearance]
}

resource "google_firestore_field" "overrides" {
  for_each = local.firestore_field_overrides

  project    = var.project_id
  database   = local.firestore_database
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  dynamic "ttl_config" {
    for_each = try(each.value.ttl, false) ? [true] : []
    content {}
  }

  # An empty list disables single-field indexing of the field, as in firestore.indexes.json.
  index_config {
    dynamic "indexes" {
      for_each = try(each.value.indexes, [])
      content {
        query_scope  = try(indexes.value.queryScope, null)
        order        = try(indexes.value.order, null)
        array_config = try(indexes.value.arrayConfig, null)
      }
    }
  }

  depends_on = [google_firestore_database.clearance]
}

resource "google_firebaserules_ruleset" "firestore" {
  count = var.deploy_firestore_rules ? 1 : 0

  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = file("${var.source_dir}/firestore.rules")
    }
  }

  depends_on = [google_firestore_database.clearance, google_project_service.apis]
}

resource "google_firebaserules_release" "firestore" {
  count = var.deploy_firestore_rules ? 1 : 0

  project      = var.project_id
  name         = "cloud.firestore"
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore[0].name}"
}

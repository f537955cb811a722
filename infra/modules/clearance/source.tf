# The functions' source: the repository zipped (without dependencies, build output or tests) in a private bucket; Cloud Build runs `npm run gcp-build`.

locals {
  source_excludes = [
    ".git",
    ".git/**",
    ".clearance",
    ".clearance/**",
    "node_modules",
    "node_modules/**",
    "dist",
    "dist/**",
    "test",
    "test/**",
    "coverage",
    "coverage/**",
    "bench",
    "bench/**",
    "infra",
    "infra/**",
    "**/.terraform/**",
    "**/*.tfstate",
    "**/*.tfstate.backup",
  ]
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.root}/.terraform/clearance/source.zip"
  excludes    = local.source_excludes
}

resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  depends_on = [google_project_service.apis]
}

# Named by content hash: a source change is a new object, and every function is rebuilt from it.
resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "source/${data.archive_file.source.output_md5}.zip"
  source = data.archive_file.source.output_path
}

# Outputs of the example root, passed through from the module.

output "check_url" {
  description = "Deploy-time check endpoint."
  value       = module.clearance.check_url
}

output "ingest_webhook_url" {
  description = "Webhook endpoint for other registries."
  value       = module.clearance.ingest_webhook_url
}

output "ingest_report_url" {
  description = "Scanner report upload endpoint."
  value       = module.clearance.ingest_report_url
}

output "attestor_name" {
  description = "Binary Authorization attestor."
  value       = module.clearance.attestor_name
}

output "topics" {
  description = "Pub/Sub topic names."
  value       = module.clearance.topics
}

output "service_accounts" {
  description = "Runtime service accounts by function."
  value       = module.clearance.service_accounts
}

output "token_secrets" {
  description = "Secrets holding the ingest and check tokens."
  value       = module.clearance.token_secrets
}

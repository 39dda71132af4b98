DROP VIEW matching.manual_decision_log;
DROP VIEW matching.cscx_accounts;
DROP VIEW matching.customer_links;
DROP TABLE outbox, pending, link_history, links, decision_log, manual_decisions, customers, tenants, accounts;

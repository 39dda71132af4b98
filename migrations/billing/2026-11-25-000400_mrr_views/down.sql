DROP VIEW customer_mrr;

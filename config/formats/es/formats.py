"""Spanish amounts as invoices in Spain write them: a point between thousands
("1.234,50"), not Django's no-break space. Only customers read Spanish (their
documents and portal: common.customer_text); the admin is not written in it."""

THOUSAND_SEPARATOR = "."

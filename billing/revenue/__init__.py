"""Revenue earned in a window (billing.revenue.earned): what margins, the
dashboard, the customer page and the revenue reports read."""

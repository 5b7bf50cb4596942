"""Puts some customers and orders into the example database, as the application would."""
import sqlite3
import sys

db = sqlite3.connect(sys.argv[1])
with db:
    for i in range(1, 11):
        db.execute("INSERT INTO customers (id, name, email, active, phone) VALUES (?, ?, ?, ?, ?)",
                   (i, f"Customer {i}", f"c{i}@example.com", i % 3 != 0, f"+1-555-01{i:02d}"))
        db.execute("INSERT INTO orders (customer_id, total_cents) VALUES (?, ?)", (i, 1000 * i))
db.close()

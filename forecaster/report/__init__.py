"""What people read: text tables, plots and the HTML report."""

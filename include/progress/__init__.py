"""Progress per unit and office, as figures, JSON and workbooks."""

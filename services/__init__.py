"""The marketplace services and the chassis they share."""

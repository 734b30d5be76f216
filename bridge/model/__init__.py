"""The TagoIO contract, pure and without I/O: data points and their validation, time parsing,
point ids, the parameters of GET and DELETE."""

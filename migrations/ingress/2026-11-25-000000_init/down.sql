DROP TABLE events; DROP TABLE inbox;

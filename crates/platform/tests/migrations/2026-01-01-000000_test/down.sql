DROP TABLE applied; DROP TABLE inbox;

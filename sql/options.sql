-- options: the validator accepts each option only where it belongs, checks
-- values, and never echoes a secret.
\set VERBOSITY default

-- unknown options and options at the wrong level list the valid ones
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (page_sise '10');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (custom_object_type_id 'cotype_x');  -- ERROR
CREATE FOREIGN TABLE bad_t (id text) SERVER close OPTIONS (page_size '10');  -- ERROR
CREATE FOREIGN TABLE bad_t (id text OPTIONS (nosuch 'x')) SERVER close;  -- ERROR
ALTER FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'https://example.com');  -- ERROR

-- secrets are accepted only on user mappings, and never shown
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_key 'api_SECRET_VALUE');  -- ERROR
CREATE FOREIGN TABLE bad_t (id text) SERVER close OPTIONS (oauth_token 'SECRET_VALUE');  -- ERROR

-- values
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (timeout_ms '0');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (connect_timeout_ms 'soon');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (page_size '1001');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'ftp://api.close.com/api/v1');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'http://api.close.com/api/v1');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'https://user:SECRET_VALUE@api.close.com/api/v1');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'https://api.close.com/api/v1?x=1');  -- ERROR
CREATE SERVER bad1 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'http://localhost.evil.com/api/v1');  -- ERROR
CREATE FOREIGN TABLE bad_t (id text) SERVER close OPTIONS (custom_object_type_id 'cotype_../x');  -- ERROR
CREATE FOREIGN TABLE bad_t (id text OPTIONS (field '')) SERVER close;  -- ERROR

-- accepted values, including plain http on loopback hosts
CREATE SERVER ok1 FOREIGN DATA WRAPPER close_fdw;
CREATE SERVER ok2 FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url 'https://api.close.com/api/v1/', timeout_ms '5000',
           connect_timeout_ms '1000', page_size '200');
CREATE SERVER ok3 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'http://127.0.0.1:9/api/v1');
CREATE SERVER ok4 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'http://[::1]:9/api/v1');
CREATE SERVER ok5 FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url 'http://localhost:9/api/v1');
ALTER SERVER ok2 OPTIONS (SET page_size '0');  -- ERROR

-- a user mapping needs exactly one credential, and checks it without echoing it
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1;  -- ERROR
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1
  OPTIONS (api_key 'api_SECRET_VALUE', oauth_token 'SECRET_VALUE');  -- ERROR
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (api_key 'api:SECRET_VALUE');  -- ERROR
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (api_key E'api_SECRET\r\nX-Injected: 1');  -- ERROR
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (api_key '');  -- ERROR
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (page_size '10');  -- ERROR
CREATE USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (api_key 'api_SECRET_VALUE');
ALTER USER MAPPING FOR CURRENT_USER SERVER ok1 OPTIONS (DROP api_key);  -- ERROR
ALTER USER MAPPING FOR CURRENT_USER SERVER ok1
  OPTIONS (DROP api_key, ADD oauth_token 'SECRET_VALUE');
CREATE FOREIGN TABLE ok_t (id text, status text OPTIONS (field 'custom.cf_x'))
  SERVER ok1 OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');

DROP SERVER ok1, ok2, ok3, ok4, ok5 CASCADE;
-- the resource a table reads: custom objects unless told
CREATE FOREIGN TABLE res_t (id text) SERVER close OPTIONS (resource 'leads');  -- ERROR
CREATE FOREIGN TABLE res_t (id text) SERVER close OPTIONS (resource 'custom_object', custom_object_type_id 'cotype_Device0000000000000000');
DROP FOREIGN TABLE res_t;

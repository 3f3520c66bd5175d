/**
 * A real certificate and its key (EC P-256, CN=example.org, valid for 100 years), for e2e tests
 * that put a certificate in a store: the confd layout parses both.
 */
export const TEST_PEM = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBgjCCASmgAwIBAgIUKaOHNMOcupkVVrLlLBXvZ5JJFkEwCgYIKoZIzj0EAwIw',
  'FjEUMBIGA1UEAwwLZXhhbXBsZS5vcmcwIBcNMjYxMjAxMjMyMTI3WhgPMjEyNjEx',
  'MDcyMzIxMjdaMBYxFDASBgNVBAMMC2V4YW1wbGUub3JnMFkwEwYHKoZIzj0CAQYI',
  'KoZIzj0DAQcDQgAEUy/TRIV2HVBTWEg+i1SWOlInyPzZ2oKg2jLjCBAcZ6t6dKCd',
  'bvmGLWOrAzBbq6CkVYV16PN8E5Baw2Xd1HHC6qNTMFEwHQYDVR0OBBYEFEqZ0GiM',
  'uiyNBcacTM1kaSqPaj1aMB8GA1UdIwQYMBaAFEqZ0GiMuiyNBcacTM1kaSqPaj1a',
  'MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgGalCqjx5nOaxmyH8',
  '4aIlYyuXqL9g9PsKVA7Nt6QWcu8CIBIzmqJERRjFbzg1hNoCwYf1iupyKjuHtJ0c',
  'SFWmLbsx',
  '-----END CERTIFICATE-----',
  '-----BEGIN PRIVATE KEY-----',
  'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggGwb6FUKGP5eWNqb',
  'yItnt9n3pKVHP0hbWlWPWOiXESahRANCAARTL9NEhXYdUFNYSD6LVJY6UifI/Nna',
  'gqDaMuMIEBxnq3p0oJ1u+YYtY6sDMFuroKRVhXXo83wTkFrDZd3UccLq',
  '-----END PRIVATE KEY-----',
  '',
].join('\n');

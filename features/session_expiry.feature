@needs-gateway-in-process
@cap-session-expiry
Feature: Session expiry
  RFC 4028: a client that stops refreshing loses its RCC session; the gateway ends the dialog
  with a BYE, and the client signs in again.

  @slow
  Scenario: A client that never refreshes within Session-Expires
    Given the gateway grants sessions of 90 seconds
    And alice is signed in
    Then the gateway ends alice's session with a BYE within 100 seconds

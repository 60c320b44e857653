@cap-session-expiry
Feature: Session expiry
  RFC 4028: a client that stops refreshing loses its RCC session; the gateway ends the dialog
  with a BYE, and the client signs in again.

  @needs-gateway-in-process
  Scenario: A client that never refreshes within Session-Expires, in virtual time
    Given the lab runs in virtual time
    And the gateway grants sessions of 90 seconds
    And alice is signed in
    Then the gateway ends alice's session with a BYE within 100 seconds

  @slow @needs-external-gateway
  Scenario: A client that never refreshes within the Session-Expires the gateway granted
    Given alice is signed in and never refreshes
    Then the gateway ends alice's session with a BYE within its Session-Expires

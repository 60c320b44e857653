@needs-gateway-in-process
@cap-gateway-restart
Feature: Gateway restart
  @slow @smoke
  Scenario: Clients re-establish after the gateway restarts
    Given alice is signed in
    When the gateway restarts
    Then the gateway holds 0 sessions and 0 PBX monitors
    When alice refreshes the session
    Then alice signs in again
    And the gateway holds 1 session and 1 PBX monitor

@needs-pbx-sim
@cap-mpop
Feature: Several endpoints and several users on one line
  @smoke
  Scenario: Two endpoints of one user both see every event
    Given alice is signed in
    And alice is also signed in on the laptop
    Then the gateway holds 2 sessions and 1 PBX monitor
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    And alice/laptop sees a call from +14255550200
    When alice/laptop answers from Lync
    Then alice sees the call as established
    And alice/laptop sees the call as established

  @needs-gateway-in-process
  Scenario: An assistant on the boss's line
    Given only bob may use alice's line
    And alice is signed in
    When bob signs in on alice's line
    Then bob is monitoring the line
    And the gateway holds 2 sessions and 1 PBX monitor
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    And bob sees a call from +14255550200

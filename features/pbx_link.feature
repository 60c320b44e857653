@needs-pbx-sim
@cap-pbx-link
Feature: PBX link failures
  Scenario: The PBX link is lost and restored mid-call
    Given alice is signed in
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When the PBX link drops
    Then the gateway restores the PBX monitors
    And the gateway holds 1 session and 1 PBX monitor
    When bob hangs up at the desk phone
    Then alice sees the call as cleared

  @profile-aes
  Scenario: The PBX ends the CTI session
    Given the PBX is Avaya
    And alice is signed in
    When the PBX ends the CTI session
    Then the gateway restores the PBX monitors
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200

  Scenario: The PBX stops answering
    Given alice is signed in
    When the PBX stops answering
    And alice tries to dial bob
    Then alice gets the CSTA error resourceBusy

  Scenario: The PBX repeats every event
    Given the PBX repeats every event
    And alice is signed in
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When alice hangs up from Lync
    Then alice sees the call as cleared
    And alice saw no protocol violations

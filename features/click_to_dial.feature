@needs-pbx-sim
@cap-make-call
Feature: Click to dial
  Background:
    Given alice is signed in

  @smoke
  @cap-events
  Scenario: The called party answers
    When alice dials bob
    Then bob's desk phone rings
    And alice sees the call as initiated
    And alice sees the call as originated
    And alice sees the call as delivered
    When bob answers at the desk phone
    Then alice sees the call as established
    And bob's desk phone is talking
    When alice hangs up from Lync
    Then alice sees the call as cleared
    And the PBX has no call
    And alice saw no protocol violations

  Scenario: The called party is busy
    Given the outside number +15550001 is busy
    When alice dials +15550001
    Then alice sees the call as failed because of busy

  @cap-clear-connection

  Scenario: Nobody answers and alice gives up
    When alice dials +15550002
    Then alice sees the call as delivered
    When alice hangs up from Lync
    Then alice sees the call as cleared
    And the PBX has no call

  Scenario: The number does not exist
    Given the outside number +15550003 is unallocated
    When alice dials +15550003
    Then alice sees the call as failed because of numberUnallocated

  Scenario: The number cannot be dialled
    When alice tries to dial not-a-number
    Then alice gets the CSTA error invalidCalledDeviceID

  @cap-clear-connection

  Scenario: The caller cancels before an answer
    When alice dials bob
    Then bob's desk phone rings
    When alice hangs up from Lync
    Then alice sees the call as cleared
    And the PBX has no call

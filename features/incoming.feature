@needs-pbx-sim
@cap-events
Feature: Incoming calls
  Background:
    Given alice is signed in

  @smoke
  @cap-answer-call
  Scenario: Answered from Lync
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    And alice's desk phone rings
    When alice answers from Lync
    Then alice sees the call as established
    And alice's desk phone is talking
    When +14255550200 hangs up
    Then alice sees the call as cleared

  Scenario: Answered at the desk phone
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    When alice answers at the desk phone
    Then alice sees the call as established

  @cap-deflect-call

  Scenario: Deflected to a colleague
    Given carol is signed in
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    When alice deflects the call to carol
    Then alice sees the call as deflected because of redirected
    And carol sees a call from +14255550200
    And carol's desk phone rings

  Scenario: Ignored until the caller gives up
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    When +14255550200 hangs up
    Then alice sees the call as cleared
    And the PBX has no call

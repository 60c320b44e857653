@needs-pbx-sim
@cap-hold-retrieve @cap-answer-call
Feature: Call waiting
  A second call rings while alice is on a call; Lync shows the waiting call and answers it. The
  PBX may hold the call in progress itself, or the client holds it first: both must work, and a
  PBX that refuses the answer until the client holds must reach the client as a CSTA error.

  Background:
    Given alice's line has call waiting
    And alice is signed in
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    And alice's desk phone rings

  Scenario: Answered from Lync, the PBX holds the call in progress
    When alice answers from Lync
    Then alice sees the call with bob as held
    And alice sees the call with +14255550200 as established
    And alice's desk phone is holding
    And alice's desk phone is talking
    And alice saw no protocol violations

  Scenario: alice holds the call in progress, then answers
    When alice puts the call with bob on hold
    Then alice sees the call with bob as held
    When alice answers from Lync
    Then alice sees the call with +14255550200 as established
    And alice saw no protocol violations

  Scenario: A PBX that does not hold the call in progress refuses the answer until alice holds it
    Given the PBX does not hold a call when another is answered
    When alice tries to answer from Lync
    Then alice gets the CSTA error connectedCallExists
    When alice puts the call with bob on hold
    Then alice sees the call with bob as held
    When alice answers from Lync
    Then alice sees the call with +14255550200 as established
    And alice saw no protocol violations

  Scenario: The waiting caller gives up
    When +14255550200 hangs up
    Then alice sees the call as cleared
    And alice's desk phone is talking
    And alice saw no protocol violations

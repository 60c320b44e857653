@needs-pbx-sim
@cap-hold-retrieve
Feature: Hold and retrieve
  @smoke
  Scenario: alice holds and retrieves a call
    Given alice is signed in
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When alice puts the call on hold
    Then alice sees the call as held
    And alice's desk phone is holding
    When alice retrieves the call
    Then alice sees the call as retrieved
    And alice's desk phone is talking

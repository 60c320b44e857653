@needs-pbx-sim
@cap-consultation-transfer
Feature: Consultation, alternate, reconnect, transfer and conference
  Background:
    Given alice is signed in
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When alice consults carol
    Then alice sees the call as held
    And carol's desk phone rings
    When carol answers at the desk phone
    Then alice sees the call as established

  Scenario: Consultation then transfer
    When alice transfers the call
    Then alice sees the call as transferred
    And bob's desk phone is talking
    And carol's desk phone is talking
    And alice saw no protocol violations

  Scenario: Alternate between the two calls
    When alice alternates between the calls
    Then alice sees the call as held
    And alice sees the call as retrieved

  Scenario: Drop the consultation and go back
    When alice goes back to the held call
    Then alice sees the call as cleared
    And alice sees the call as retrieved

  Scenario: Conference all three
    When alice conferences the calls
    Then alice sees the call as conferenced
    And alice's desk phone is talking

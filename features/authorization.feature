@cap-authorization
Feature: Authorization
  @needs-gateway-in-process
  Scenario: A user not in the table is refused
    Given only bob may use alice's line
    When carol tries to sign in
    Then carol is refused with 403

  @needs-pbx-sim
  Scenario: A user may not dial from someone else's line
    Given alice is signed in
    When alice tries to dial from bob's line
    Then alice gets the CSTA error privilegeViolationSpecifiedDevice
    And the PBX has no call
